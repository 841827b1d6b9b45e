// incidencias: improvements only. Every page works without this script.
// - live countdowns on [data-due] (the server wrote the same words at render time);
// - the queue (#bandeja[data-refresh]) refreshes itself, revalidated by ETag;
// - procedure search filters the <select> of the new-incident form;
// - forms with data-confirm ask before a destructive action.
(function () {
  "use strict";

  function span(seconds) {
    var s = Math.abs(Math.trunc(seconds));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) { return h > 0 ? d + " d " + h + " h" : d + " d"; }
    if (h > 0) { return m > 0 ? h + " h " + m + " min" : h + " h"; }
    if (m > 0) { return m + " min"; }
    return "menos de 1 min";
  }

  function tick(root) {
    var now = Date.now();
    (root || document).querySelectorAll("[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) { return; }
      var secs = (due - now) / 1000;
      el.textContent = secs >= 0 ? "vence en " + span(secs) : "excedido hace " + span(secs);
    });
  }

  function refreshQueue() {
    var box = document.getElementById("bandeja");
    if (!box || !window.fetch) { return; }
    var every = parseInt(box.getAttribute("data-refresh"), 10) || 30;
    var etag = null;
    setInterval(function () {
      if (document.hidden) { return; }
      var headers = { "X-Parcial": "bandeja" };
      if (etag) { headers["If-None-Match"] = etag; }
      fetch(window.location.href, { headers: headers, credentials: "same-origin" })
        .then(function (r) {
          // The session ended: the answer is the sign-in page, not the queue.
          if (r.redirected || r.status === 401) { window.location.reload(); return; }
          if (r.status === 200) {
            etag = r.headers.get("ETag");
            return r.text().then(function (html) {
              var focused = document.activeElement && box.contains(document.activeElement);
              if (!focused) { box.innerHTML = html; tick(box); }
            });
          }
        })
        .catch(function () { /* offline for a moment: try again next time */ });
    }, every * 1000);
  }

  function procedureSearch() {
    document.querySelectorAll("[data-show]").forEach(function (el) { el.hidden = false; });
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      var select = document.getElementById(input.getAttribute("data-filter"));
      if (!select) { return; }
      input.addEventListener("input", function () {
        var q = input.value.trim().toLowerCase();
        var first = null;
        Array.prototype.forEach.call(select.options, function (o) {
          if (!o.value) { return; }
          var match = !q || o.text.toLowerCase().indexOf(q) !== -1;
          o.hidden = !match;
          if (match && !first) { first = o; }
        });
        if (q && first) { select.value = first.value; }
      });
    });
  }

  // The public status page: filter the list as the person types (the form works without).
  function listFilter() {
    document.querySelectorAll("input[data-filter-list]").forEach(function (input) {
      var list = document.getElementById(input.getAttribute("data-filter-list"));
      if (!list) { return; }
      input.addEventListener("input", function () {
        var q = input.value.trim().toLowerCase();
        list.querySelectorAll("li[data-text]").forEach(function (li) {
          li.hidden = q !== "" && li.getAttribute("data-text").indexOf(q) === -1;
        });
        list.querySelectorAll("[data-group]").forEach(function (g) {
          g.hidden = g.querySelectorAll("li[data-text]:not([hidden])").length === 0;
        });
      });
    });
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 30000);
    refreshQueue();
    procedureSearch();
    listFilter();
    confirmations();
  });
})();
