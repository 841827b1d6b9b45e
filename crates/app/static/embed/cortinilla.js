/* incidencias: the maintenance banner ("cortinilla") a gob.mx procedure page embeds with
 *   <script async src="https://HOST/embed/cortinilla.js" data-tramite="SEGOB-01-001"></script>
 * Reads the procedure's public status; while the agency shows a banner, a notice is fixed
 * to the bottom of the viewport (no layout shift, no animation), styled through the CSSOM
 * only (a strict host CSP allows it). No cookies, no storage; a failure shows and logs
 * nothing. */
(() => {
  'use strict';
  const DEFAULT = 'Este trámite presenta una falla y se encuentra en atención. ' +
    'Le ofrecemos una disculpa por las molestias.';
  const MARK = 'data-incidencias-cortinilla';
  try {
    // Our tag; where currentScript is missing, the last one on the page.
    let tag = document.currentScript;
    if (!tag) {
      const all = document.querySelectorAll('script[src*="/embed/cortinilla.js"][data-tramite]');
      tag = all[all.length - 1];
    }
    const homoclave = tag && (tag.getAttribute('data-tramite') || '').trim();
    if (!homoclave || homoclave.length > 64) return;
    const base = new URL(tag.src, document.baseURI).origin;
    if (!/^https?:/.test(base)) return;
    const url = `${base}/api/v1/public/procedures/${encodeURIComponent(homoclave)}/status`;
    fetch(url, { credentials: 'omit', mode: 'cors', cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : null))
      .then((doc) => {
        const b = doc && doc.banner;
        if (!b || b.shown !== true) return;
        const text = typeof b.message === 'string' && b.message.trim() ? b.message : DEFAULT;
        if (document.body) show(homoclave, text);
        else addEventListener('DOMContentLoaded', () => { try { show(homoclave, text); } catch (e) {} });
      })
      .catch(() => {});
  } catch (e) { /* the host page must never notice us */ }

  // An element styled through the CSSOM (a style attribute would need 'unsafe-inline'),
  // reset first so that the host page's CSS does not leak in.
  function el(tag, props) {
    const e = document.createElement(tag);
    const s = Object.assign({ all: 'initial', fontFamily: 'inherit', fontSize: 'inherit',
      lineHeight: 'inherit', color: 'inherit' }, props);
    for (const k of Object.keys(s)) e.style[k] = s[k];
    return e;
  }

  function show(homoclave, text) {
    // Included twice: one banner per procedure.
    for (const e of document.querySelectorAll(`[${MARK}]`)) {
      if (e.getAttribute(MARK) === homoclave) return;
    }
    const box = el('div', {
      position: 'fixed', left: '0', right: '0', bottom: '0', zIndex: '2147483647',
      maxWidth: '64rem', margin: '0 auto', boxSizing: 'border-box', display: 'flex',
      alignItems: 'flex-start', gap: '1rem', padding: '.75rem 1rem', fontSize: '1rem',
      lineHeight: '1.5', background: '#611232', color: '#fff',
      borderTop: '4px solid #b38e5d', boxShadow: '0 -2px 8px rgba(0,0,0,.3)',
    });
    box.setAttribute('role', 'alert');
    box.setAttribute(MARK, homoclave);
    box.lang = 'es-MX';
    const words = el('div', { display: 'block', flex: '1 1 auto', minWidth: '0' });
    const title = el('strong', { display: 'block', fontWeight: '700' });
    title.textContent = 'Aviso de mantenimiento';
    const message = el('span', {});
    message.textContent = text; // the agency's words, as text
    words.append(title, ' ', message);
    const close = el('button', {
      flex: '0 0 auto', background: 'transparent', border: '2px solid #fff',
      borderRadius: '.3rem', padding: '.25rem .75rem', cursor: 'pointer', outlineOffset: '2px',
    });
    close.type = 'button';
    close.textContent = 'Cerrar aviso';
    close.addEventListener('focus', () => { close.style.outline = '3px solid #fff'; });
    close.addEventListener('blur', () => { close.style.outline = ''; });
    close.addEventListener('click', () => box.remove());
    box.append(words, close);
    document.body.appendChild(box);
  }
})();
