// The web UI walked end to end in a real browser, by every role of the protocol, with an
// accessibility audit (axe-core, WCAG 2.1 A/AA) and a screenshot of every page visited.
//
// Run by crates/app/tests/browser.rs against `incidencias demo`; by hand:
//   BASE_URL=http://127.0.0.1:8080 DEMO_PASSWORD=demo-incidencias-2026 \
//   OTHER_EMAIL=... OTHER_PASSWORD=... node crates/app/tests/browser/walk.mjs
//
// Environment: BASE_URL, DEMO_PASSWORD, OTHER_EMAIL and OTHER_PASSWORD (a user of an
// agency with no incidents), SCREENSHOTS (folder, default ./screenshots),
// INCIDENCIAS_TEST_CHROMIUM (default /usr/bin/chromium), and PORTAL_ORIGIN (optional:
// http://127.0.0.1:PORT, a free port the demo lists in INCIDENCIAS_PORTAL_ORIGINS, where
// the walk serves a portal page that embeds the banner). Exits non-zero at the first
// failure, with a screenshot of the page it was on (FALLO.png).
//
// Pages are found by their accessible roles and names (getByRole, getByLabel), the way
// assistive technology finds them, so markup details do not matter but names do.

import { mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve('axe-core/axe.min.js');

const BASE_URL = required('BASE_URL').replace(/\/+$/, '');
const DEMO_PASSWORD = required('DEMO_PASSWORD');
const OTHER_EMAIL = required('OTHER_EMAIL');
const OTHER_PASSWORD = required('OTHER_PASSWORD');
const SCREENSHOTS = path.resolve(process.env.SCREENSHOTS || 'screenshots');
const CHROMIUM = process.env.INCIDENCIAS_TEST_CHROMIUM || '/usr/bin/chromium';
const PORTAL_ORIGIN = (process.env.PORTAL_ORIGIN || '').replace(/\/+$/, '');

const HELPDESK = 'mesa@ugd.gob.mx';
const AGENCY = 'responsable@sbd.gob.mx';
const VALIDATOR = 'validacion.cedn@ugd.gob.mx';
const ADMIN = 'admin@incidencias.gob.mx';

const DESKTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const BLOCKING_IMPACTS = new Set(['serious', 'critical']);
const ACTION_MS = 15_000;
const NAVIGATION_MS = 30_000;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`FALLO: falta la variable de entorno ${name}`);
    process.exit(2);
  }
  return value;
}

// ---------------------------------------------------------------------------------------
// Failing, and what the browser says behind our back
// ---------------------------------------------------------------------------------------

class WalkFailure extends Error {}

function fail(message) {
  throw new WalkFailure(message);
}

/** Console errors, uncaught page errors and CSP reports, until the next `assertQuiet`. */
const problems = [];
/**
 * Paths whose error status the walk provokes on purpose: their "Failed to load resource"
 * console line is fine. Never removed: every `goto` checks the status it gets itself.
 */
const expectedErrorPaths = new Set();
/**
 * Whole URLs whose failed load the walk provokes on purpose (the embedded banner against a
 * stopped or failing service, or read from an origin that is not the portal's): their
 * "Failed to load resource" and CORS lines are fine, whatever the reason (refused
 * connection, aborted request, error status, no CORS). An uncaught exception is not.
 */
const expectedFailedUrls = new Set();
let faviconNoticed = false;
/** The page the walk is on, for the screenshot of a failure. */
let current = null;

function watch(page, { csp = false } = {}) {
  page.on('console', (msg) => {
    const text = msg.text();
    const where = msg.location()?.url || page.url();
    if (csp && /Content Security Policy|Refused to/i.test(text)) {
      problems.push(`violación de la CSP en ${where}: ${text}`);
      return;
    }
    if (msg.type() !== 'error') return;
    const failed = text.startsWith('Failed to load resource:')
      ? where
      : text.match(/^Access to \w+ at '([^']+)' from origin .* blocked by CORS policy/)?.[1];
    if (failed && expectedFailedUrls.has(failed)) return;
    if (/^Failed to load resource: the server responded with a status of \d+/.test(text)) {
      const url = safeUrl(where);
      // The browser asks for /favicon.ico on its own; the page did not.
      if (url?.pathname === '/favicon.ico') {
        if (!faviconNoticed) console.log(`  aviso: ${where} no existe (no hace fallar la prueba)`);
        faviconNoticed = true;
        return;
      }
      if (url && expectedErrorPaths.has(url.pathname)) return;
    }
    problems.push(`error en la consola de ${where}: ${text}`);
  });
  page.on('pageerror', (err) => {
    problems.push(`error de JavaScript en ${page.url()}: ${err.message}`);
  });
  // Destructive actions ask "are you sure" (window.confirm): the person says yes.
  page.on('dialog', async (dialog) => {
    console.log(`  ${dialog.type()}: «${dialog.message()}» → Aceptar`);
    await dialog.accept();
  });
}

function assertQuiet() {
  if (problems.length > 0) {
    fail(`el navegador informó:\n    ${problems.splice(0).join('\n    ')}`);
  }
}

function safeUrl(s) {
  try {
    return new URL(s);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------
// Browser contexts
// ---------------------------------------------------------------------------------------

let browser;

/**
 * A fresh context (own cookies). `bypassCSP` is on by default so that axe can be injected;
 * the CSP itself is proven in a context of its own (`csp: true`).
 */
async function open({ viewport = DESKTOP, javaScript = true, csp = false, phone = false } = {}) {
  const context = await browser.newContext({
    viewport,
    javaScriptEnabled: javaScript,
    bypassCSP: !csp,
    locale: 'es-MX',
    timezoneId: 'America/Mexico_City',
    ...(phone ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
  });
  context.setDefaultTimeout(ACTION_MS);
  context.setDefaultNavigationTimeout(NAVIGATION_MS);
  const page = await context.newPage();
  watch(page, { csp });
  current = page;
  return page;
}

async function closeContext(page) {
  assertQuiet();
  await page.context().close();
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const normalize = (s) => (s ?? '').replace(/\s+/g, ' ').trim();

function step(title) {
  console.log(`\n== ${title}`);
}

/** GET `pathname`; fails unless it answers `status` (by default any 2xx). */
async function goto(page, pathname, { status } = {}) {
  current = page;
  const response = await page.goto(BASE_URL + pathname);
  if (!response) fail(`GET ${pathname}: sin respuesta`);
  const ok = status === undefined ? response.ok() : response.status() === status;
  if (!ok) {
    fail(`GET ${pathname} respondió ${response.status()}, se esperaba ${status ?? '2xx'}`);
  }
  return response;
}

/** Clicks a submit button and waits for the page the server answers with. */
async function submit(page, button, what) {
  current = page;
  const navigated = page.waitForEvent('framenavigated', {
    predicate: (frame) => frame === page.mainFrame(),
    timeout: NAVIGATION_MS,
  });
  navigated.catch(() => {}); // handled below; keeps a click failure from leaving it unhandled
  await button.click();
  try {
    await navigated;
  } catch {
    const invalid = await page
      .locator('form :invalid')
      .evaluateAll((els) => els.map((e) => `${e.name || e.id}: ${e.validationMessage}`))
      .catch(() => []);
    fail(
      `«${what}» no envió el formulario` +
        (invalid.length ? ` (el navegador lo rechaza: ${invalid.join('; ')})` : ''),
    );
  }
  await page.waitForLoadState('load');
}

/** Visible, non-empty texts of the elements with `role`. */
async function texts(page, role) {
  const out = [];
  for (const el of await page.getByRole(role).all()) {
    const t = normalize(await el.textContent());
    if (t && (await el.isVisible())) out.push(t);
  }
  return out;
}

/** The names of the action forms on the page (for messages). */
async function offered(page) {
  const names = await page
    .locator('form[aria-label]')
    .evaluateAll((forms) => forms.map((f) => f.getAttribute('aria-label')));
  return names.length ? names.map((n) => `«${n}»`).join(', ') : '(ninguna)';
}

/** A value to keep when the field comes filled, otherwise `value`. */
const keepOr = (value) => ({ keepOr: value });

/** Picks the option whose text is `wanted` (or starts with it, or matches the RegExp). */
async function choose(select, wanted, label) {
  const options = await select.locator('option').evaluateAll((os) =>
    os.map((o) => ({
      value: o.value,
      text: o.textContent.replace(/\s+/g, ' ').trim(),
      usable: !o.disabled && o.value !== '',
    })),
  );
  const usable = options.filter((o) => o.usable);
  const pick =
    wanted instanceof RegExp
      ? usable.find((o) => wanted.test(o.text))
      : (usable.find((o) => o.text === wanted) ?? usable.find((o) => o.text.startsWith(wanted)));
  if (!pick) {
    fail(
      `«${label}» no ofrece ${wanted}; opciones: ${options.map((o) => `«${o.text}»`).join(', ')}`,
    );
  }
  await select.selectOption(pick.value);
  return pick;
}

/** Fills the labelled fields of `scope` (a form): text, textarea, datetime-local, select. */
async function fill(scope, fields) {
  const chosen = {};
  for (const [label, wanted] of Object.entries(fields)) {
    const field = scope.getByLabel(label, { exact: true });
    const n = await field.count();
    if (n !== 1) fail(`el campo «${label}» aparece ${n} veces en el formulario (se esperaba 1)`);
    const tag = await field.evaluate((el) => el.tagName.toLowerCase());
    if (tag === 'select') {
      chosen[label] = (await choose(field, wanted, label)).text;
    } else if (wanted && typeof wanted === 'object' && 'keepOr' in wanted) {
      const prefilled = await field.inputValue();
      if (prefilled) {
        chosen[label] = prefilled;
      } else {
        await field.fill(wanted.keepOr);
        chosen[label] = wanted.keepOr;
      }
    } else {
      await field.fill(wanted);
      chosen[label] = wanted;
    }
  }
  return chosen;
}

/**
 * Takes an action offered on the incident page: the form named `formName`, its `fields`
 * filled, submitted with its button (named like the form unless `button` says otherwise).
 * The server must answer with a role="status" message and no role="alert".
 */
async function act(page, formName, fields = {}, button = formName) {
  current = page;
  const form = page.getByRole('form', { name: formName, exact: true });
  if ((await form.count()) !== 1) {
    fail(`la acción «${formName}» no se ofrece en ${page.url()}; se ofrecen: ${await offered(page)}`);
  }
  await fill(form, fields);
  await submit(page, form.getByRole('button', { name: button, exact: true }), button);
  const alerts = await texts(page, 'alert');
  if (alerts.length) fail(`«${button}» fue rechazada: ${alerts.join(' | ')}`);
  const status = await texts(page, 'status');
  if (!status.length) fail(`tras «${button}» no aparece un mensaje role="status" en ${page.url()}`);
  console.log(`  ${button}: «${status.join(' | ')}»`);
}

async function expectState(page, text) {
  const state = page.getByTestId('state');
  if ((await state.count()) === 0) fail(`${page.url()} no muestra el estado (data-testid="state")`);
  const shown = normalize(await state.first().textContent());
  if (!shown.includes(text)) fail(`estado esperado «${text}», la página muestra «${shown}»`);
  console.log(`  estado: ${shown}`);
}

let shots = 0;

/**
 * The page as it stands: no console errors so far, a screenshot (NN-name.png) and, where
 * JavaScript runs, an axe audit that fails on any serious or critical violation.
 */
async function check(page, name, { axe = true } = {}) {
  current = page;
  await page.waitForLoadState('load');
  assertQuiet();
  shots += 1;
  const file = `${String(shots).padStart(2, '0')}-${name}.png`;
  await page.screenshot({ path: path.join(SCREENSHOTS, file), fullPage: true });
  let verdict = 'axe: se omite sin JavaScript (la misma página se audita con JavaScript)';
  if (axe) verdict = await audit(page, name);
  assertQuiet();
  console.log(`  ✓ ${file}  ${new URL(page.url()).pathname}  ${verdict}`);
}

async function audit(page, name) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
    await page.addScriptTag({ path: AXE_PATH });
  }
  const result = await page.evaluate(
    (values) => window.axe.run(document, { runOnly: { type: 'tag', values } }),
    AXE_TAGS,
  );
  const blocking = result.violations.filter((v) => BLOCKING_IMPACTS.has(v.impact));
  for (const v of result.violations) {
    const mark = BLOCKING_IMPACTS.has(v.impact) ? 'VIOLACIÓN' : 'aviso';
    console.log(`    ${mark} axe ${v.id} (${v.impact}): ${v.help}`);
    for (const node of v.nodes) console.log(`      en ${node.target.join(' ')}`);
  }
  if (blocking.length) {
    fail(
      `axe: ${blocking.length} violación(es) graves o críticas en «${name}» (${page.url()}): ` +
        blocking.map((v) => v.id).join(', '),
    );
  }
  return `axe: ${result.passes.length} reglas cumplidas; avisos menores: ${result.violations.length}`;
}

/** "YYYY-MM-DDTHH:MM" in Mexico City, `minutesAgo` minutes ago (for datetime-local). */
function mexicoCity(minutesAgo = 0) {
  const at = new Date(Date.now() - minutesAgo * 60_000);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      timeZone: 'America/Mexico_City',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(at)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

// ---------------------------------------------------------------------------------------
// Signing in and out, the header, the queue
// ---------------------------------------------------------------------------------------

function loginForm(page) {
  return page
    .locator('form')
    .filter({ has: page.getByLabel('Correo electrónico', { exact: true }) });
}

async function login(page, email, password = DEMO_PASSWORD) {
  await goto(page, '/entrar');
  const form = loginForm(page);
  if ((await form.count()) !== 1) fail('/entrar no muestra el formulario «Correo electrónico»');
  await form.getByLabel('Correo electrónico', { exact: true }).fill(email);
  await form.getByLabel('Contraseña', { exact: true }).fill(password);
  await submit(page, form.getByRole('button', { name: 'Entrar', exact: true }), 'Entrar');
  if (new URL(page.url()).pathname.startsWith('/entrar')) {
    const alerts = await texts(page, 'alert');
    fail(`no se pudo entrar como ${email}: ${alerts.join(' | ') || 'la página sigue en /entrar'}`);
  }
  console.log(`  entró ${email} → ${new URL(page.url()).pathname}`);
}

async function logout(page) {
  const salir = page.getByRole('button', { name: 'Salir', exact: true });
  if ((await salir.count()) !== 1) fail(`${page.url()} no tiene el botón «Salir»`);
  await submit(page, salir, 'Salir');
  // Signed out, the queue is not shown (whatever / answers: a redirect, 401...).
  expectedErrorPaths.add('/');
  await page.goto(BASE_URL + '/');
  await page.waitForLoadState('load');
  if ((await page.getByRole('button', { name: 'Salir', exact: true }).count()) > 0) {
    fail(`tras «Salir» la sesión sigue abierta (${page.url()})`);
  }
  console.log(`  salió (/ lleva a ${new URL(page.url()).pathname})`);
}

/** The signed-in header: nav links, "Salir", and "Nueva incidencia" only for `canReport`. */
async function expectHeader(page, { canReport }) {
  const nav = page.getByRole('navigation');
  for (const name of ['Bandeja', 'Mi cuenta']) {
    if ((await nav.getByRole('link', { name, exact: true }).count()) === 0) {
      fail(`la navegación no tiene el enlace «${name}» (${page.url()})`);
    }
  }
  const report = await nav.getByRole('link', { name: 'Nueva incidencia', exact: true }).count();
  if ((report > 0) !== canReport) {
    fail(`el enlace «Nueva incidencia» ${canReport ? 'falta' : 'sobra'} en la navegación`);
  }
  if ((await page.getByRole('button', { name: 'Salir', exact: true }).count()) !== 1) {
    fail('falta el botón «Salir»');
  }
  if ((await page.getByRole('link', { name: 'Ir al contenido', exact: true }).count()) === 0) {
    fail('falta el enlace «Ir al contenido»');
  }
}

/** The skip link is the first stop of the keyboard and leads to an existing element. */
async function expectSkipLinkFirst(page) {
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => {
    const el = document.activeElement;
    const href = el?.getAttribute('href') ?? '';
    const target = href.startsWith('#') ? document.getElementById(href.slice(1)) : null;
    return { text: (el?.textContent ?? '').trim(), href, target: Boolean(target) };
  });
  if (focused.text !== 'Ir al contenido') {
    fail(`la primera tecla Tab enfoca «${focused.text}», no «Ir al contenido»`);
  }
  if (!focused.target) fail(`«Ir al contenido» apunta a ${focused.href}, que no existe`);
  // A focused skip link usually shows itself and moves the header: let it go again.
  await page.evaluate(() => document.activeElement?.blur());
}

/** Opens the incident from the queue, by the link whose text is its folio. */
async function openFromQueue(page, folio, shotName) {
  await goto(page, '/');
  const link = page.getByRole('link', { name: folio, exact: true });
  if ((await link.count()) === 0) fail(`la bandeja no lista ${folio}`);
  const href = await link.first().getAttribute('href');
  if (!href?.endsWith(`/incidencias/${folio}`)) {
    fail(`el enlace de ${folio} lleva a ${href}, no a /incidencias/${folio}`);
  }
  await check(page, shotName);
  await link.first().click();
  await page.waitForURL((u) => decodeURIComponent(u.pathname) === `/incidencias/${folio}`);
}

// ---------------------------------------------------------------------------------------
// The portal's banner (cortinilla): the simulator of `incidencias demo` and a portal of
// another origin, both embedding /embed/cortinilla.js
// ---------------------------------------------------------------------------------------

const START_BUTTON = 'Iniciar trámite en línea';

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const statusPath = (homoclave) =>
  `/api/v1/public/procedures/${encodeURIComponent(homoclave)}/status`;

/**
 * The demo procedure of agency `prefix` the walk reports on: one that the demo's other
 * incidents leave operating (button enabled, no banner), so that the portal shows this
 * walk's banner, and none once it is removed.
 */
async function quietProcedure(prefix) {
  const response = await fetch(`${BASE_URL}/api/v1/public/procedures`);
  if (!response.ok) fail(`GET /api/v1/public/procedures respondió ${response.status}`);
  const { procedures } = await response.json();
  const quiet = procedures.find(
    (p) => p.homoclave.startsWith(prefix) && p.button_enabled && !p.banner.shown,
  );
  if (!quiet) fail(`el demo no tiene un trámite ${prefix}… sin cortinilla y con el botón habilitado`);
  return quiet;
}

/**
 * Opens the portal simulator of `homoclave` until the public status its embed reads has
 * `banner.shown === shown` (reloading for a while, should the status lag behind the
 * incident); returns that status document.
 */
async function openPortal(page, homoclave, shown) {
  const pathname = `/demo/portal/${encodeURIComponent(homoclave)}`;
  const deadline = Date.now() + ACTION_MS;
  for (;;) {
    const answered = page.waitForResponse((r) => safeUrl(r.url())?.pathname === statusPath(homoclave));
    answered.catch(() => {}); // handled below
    await goto(page, pathname);
    const response = await answered.catch(() => null);
    if (!response) fail(`${pathname} no pidió ${statusPath(homoclave)} (¿no carga /embed/cortinilla.js?)`);
    if (!response.ok()) fail(`${statusPath(homoclave)} respondió ${response.status()}`);
    const doc = await response.json();
    if (doc.banner?.shown === shown) return doc;
    if (Date.now() > deadline) {
      fail(`${statusPath(homoclave)} sigue diciendo banner.shown = ${doc.banner?.shown}`);
    }
    await page.waitForTimeout(1000);
  }
}

/** The banner the embed inserted, waited for; fails unless it shows `message`. */
async function expectBanner(page, message) {
  const alert = page.getByRole('alert').filter({ hasText: 'Aviso de mantenimiento' });
  try {
    await alert.first().waitFor({ timeout: ACTION_MS });
  } catch {
    fail(`${page.url()} no muestra la cortinilla (role="alert" «Aviso de mantenimiento»)`);
  }
  if ((await alert.count()) !== 1) fail(`${page.url()} muestra ${await alert.count()} cortinillas`);
  const shown = normalize(await alert.textContent());
  if (!shown.includes(message)) fail(`la cortinilla dice «${shown}», no «${message}»`);
  // Fixed to the viewport: it takes no room in the page, so nothing moves when it appears.
  const position = await alert.evaluate((el) => getComputedStyle(el).position);
  if (position !== 'fixed') fail(`la cortinilla tiene position: ${position}, no fixed`);
  console.log(`  cortinilla: «${shown}»`);
  return alert;
}

/**
 * Step 2, banner up and button disabled: the simulator shows the incident's banner under
 * its own strict CSP and passes axe; "Cerrar aviso" closes it; the iframe variant shows
 * it; the portal's origin (PORTAL_ORIGIN), under a strict CSP of its own, shows it too
 * (the status answers it with CORS), and any other origin shows nothing.
 */
async function expectPortalWithBanner(procedure, message) {
  for (const csp of [true, false]) {
    const portal = await open({ csp });
    await openPortal(portal, procedure.homoclave, true);
    const h1 = normalize(await portal.getByRole('heading', { level: 1 }).textContent());
    if (h1 !== procedure.name) fail(`el simulador titula «${h1}», no «${procedure.name}»`);
    const alert = await expectBanner(portal, message);
    const button = portal.getByRole('button', { name: START_BUTTON, exact: true });
    if ((await button.count()) !== 1 || !(await button.isDisabled())) {
      fail(`con la incidencia notificada, «${START_BUTTON}» no es un botón deshabilitado`);
    }
    if ((await portal.getByRole('link', { name: START_BUTTON, exact: true }).count()) !== 0) {
      fail(`con el botón deshabilitado, «${START_BUTTON}» sigue siendo un enlace`);
    }
    if (csp) {
      await portal.waitForTimeout(250); // late console reports
      assertQuiet();
      console.log('  ✓ sin violaciones de la CSP: el simulador del portal con la cortinilla');
    } else {
      await check(portal, 'portal-simulador-cortinilla');
      await alert.getByRole('button', { name: 'Cerrar aviso', exact: true }).click();
      if ((await portal.getByRole('alert').count()) !== 0) fail('«Cerrar aviso» no quita la cortinilla');
      // The iframe variant, for portal pages that embed no script.
      await goto(portal, `/embed/cortinilla/${encodeURIComponent(procedure.homoclave)}`);
      const framed = normalize(await portal.getByRole('alert').textContent());
      if (!framed.includes(message)) fail(`la cortinilla en iframe dice «${framed}», no «${message}»`);
      await check(portal, 'cortinilla-iframe');
    }
    await closeContext(portal);
  }
  const tag = `<script async src="${BASE_URL}/embed/cortinilla.js" data-tramite="${procedure.homoclave}"></script>`;
  // The portal's own origin reads the status (CORS) and shows the banner.
  if (PORTAL_ORIGIN) {
    const port = Number(new URL(PORTAL_ORIGIN).port);
    if (new URL(PORTAL_ORIGIN).origin !== `http://127.0.0.1:${port}`) {
      fail(`PORTAL_ORIGIN debe ser http://127.0.0.1:PUERTO, no ${PORTAL_ORIGIN}`);
    }
    const portal = await open({ csp: true });
    await foreignPortal(portal, [tag], { port });
    await expectBanner(portal, message);
    await portal.waitForTimeout(250); // late console reports
    assertQuiet();
    console.log(`  ✓ el portal (${PORTAL_ORIGIN}, bajo su propia CSP) muestra la cortinilla`);
    await closeContext(portal);
  } else {
    console.log('  aviso: sin PORTAL_ORIGIN no se prueba la cortinilla desde el origen del portal');
  }
  // Any other origin is refused the status: the embed shows nothing, and throws nothing.
  const api = `${BASE_URL}${statusPath(procedure.homoclave)}`;
  expectedFailedUrls.add(api);
  const stranger = await open({ csp: true });
  const asked = stranger.waitForRequest((r) => r.url() === api, { timeout: ACTION_MS });
  asked.catch(() => {}); // handled below
  const origin = await foreignPortal(stranger, [tag]);
  if (!(await asked.catch(() => null))) fail(`${origin}: el script no pidió ${api}`);
  await stranger.waitForTimeout(500); // whatever the script does with the refusal
  if ((await stranger.locator('[role=alert]').count()) !== 0) {
    fail(`un origen que no es el del portal (${origin}) lee el estado y muestra la cortinilla`);
  }
  assertQuiet();
  console.log(`  ✓ otro origen (${origin}) no lee el estado (sin CORS): nada se muestra, ningún error`);
  await closeContext(stranger);
  expectedFailedUrls.delete(api);
}

/** Step 4, banner removed and button enabled again: no banner (script nor iframe); the button is a link. */
async function expectPortalWithoutBanner(procedure) {
  const portal = await open();
  const doc = await openPortal(portal, procedure.homoclave, false);
  if (!doc.button_enabled) fail(`${statusPath(procedure.homoclave)} dice button_enabled = false`);
  await portal.waitForTimeout(250); // the embed inserts its banner right after the answer
  if ((await portal.getByRole('alert').count()) !== 0) {
    fail('el simulador muestra una cortinilla que el estado público ya no muestra');
  }
  const link = portal.getByRole('link', { name: START_BUTTON, exact: true });
  if ((await link.count()) !== 1) fail(`«${START_BUTTON}» no es un enlace con el botón habilitado`);
  const href = await link.getAttribute('href');
  if (href !== procedure.url) fail(`«${START_BUTTON}» lleva a ${href}, no a ${procedure.url}`);
  await check(portal, 'portal-simulador-sin-cortinilla');
  await goto(portal, `/embed/cortinilla/${encodeURIComponent(procedure.homoclave)}`);
  if ((await portal.getByRole('alert').count()) !== 0) fail('la cortinilla en iframe sigue mostrándose');
  await closeContext(portal);
}

/**
 * Portals of other origins: servers of the walk's own on ports of 127.0.0.1 (real
 * servers, not page.route, so that Chromium sees the page and our service in the same
 * address space and lets one read the other), answering every path with `foreign.body`
 * under a strict CSP that allows scripts and requests from `scriptOrigin` only (no
 * styles, no inline script).
 */
const foreign = { servers: new Map(), body: '', csp: '' };

/** The origin of the walk's portal server on `port` (0: any free one), started once. */
async function foreignOrigin(port = 0) {
  if (!foreign.servers.has(port)) {
    const server = http.createServer((_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': foreign.csp,
        'cache-control': 'no-store',
      });
      res.end(foreign.body);
    });
    server.unref();
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    }).catch((err) => fail(`no se pudo servir un portal en 127.0.0.1:${port}: ${err.message}`));
    foreign.servers.set(port, { server, origin: `http://127.0.0.1:${server.address().port}` });
  }
  return foreign.servers.get(port).origin;
}

/** Opens, in `page`, a portal page of another origin (see `foreignOrigin`) with `scripts`. */
async function foreignPortal(page, scripts, { scriptOrigin = BASE_URL, port = 0 } = {}) {
  current = page;
  const origin = await foreignOrigin(port);
  foreign.csp =
    `default-src 'none'; script-src ${scriptOrigin}; connect-src ${scriptOrigin}; ` +
    "style-src 'none'; img-src data:; base-uri 'none'";
  foreign.body =
    '<!DOCTYPE html><html lang="es-MX"><head><meta charset="utf-8">' +
    '<link rel="icon" href="data:,"><title>Portal de otro origen</title></head>' +
    '<body><main><h1>Trámite de prueba</h1><p>Una página del portal.</p></main>' +
    scripts.join('') +
    '</body></html>';
  const response = await page.goto(`${origin}/tramite`);
  if (!response?.ok()) fail(`el portal de otro origen no respondió (${origin})`);
  await page.waitForLoadState('load');
  return origin;
}

/** A port of 127.0.0.1 free a moment ago: nothing listens on it. */
async function freePort() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The status of a procedure as the fake answers it (`body` a string or a document). */
function fakeStatus(route, status, body) {
  return route.fulfill({
    status,
    contentType: typeof body === 'string' ? 'text/html' : 'application/json',
    headers: { 'access-control-allow-origin': '*' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/**
 * The embed on a portal of another origin when our service is stopped or failing: nothing
 * is shown and no exception escapes (a failed request's console line is expected here, an
 * uncaught exception never). A control case proves a banner would have been seen, and
 * that the agency's text is shown as text, once however often the script is included.
 */
async function embedFailures() {
  const homoclave = 'PRUEBA-01-001';
  const script = (origin, tramite = homoclave) =>
    `<script async src="${origin}/embed/cortinilla.js"` +
    (tramite ? ` data-tramite="${tramite}"` : '') +
    '></script>';
  // A port nothing listens on: one just freed (Chromium refuses the discard port 9 by
  // itself, ERR_UNSAFE_PORT, without trying to connect).
  const stopped = `http://127.0.0.1:${await freePort()}`;
  const api = `${BASE_URL}${statusPath(homoclave)}`;
  expectedFailedUrls.add(`${stopped}/embed/cortinilla.js`);
  expectedFailedUrls.add(api);

  const cases = [
    ['el servicio no responde (el script no carga)', stopped, null],
    ['la petición del estado falla (red)', BASE_URL, (route) => route.abort()],
    ['el estado responde 500', BASE_URL, (route) => fakeStatus(route, 500, { title: 'error' })],
    ['el estado no es JSON', BASE_URL, (route) => fakeStatus(route, 200, '<html>mantenimiento</html>')],
    ['el estado no trae banner', BASE_URL, (route) => fakeStatus(route, 200, { homoclave })],
  ];
  for (const [what, origin, answer] of cases) {
    const page = await open({ csp: true });
    let hit;
    const asked = new Promise((resolve) => {
      hit = resolve;
    });
    if (answer) {
      await page.route(`${BASE_URL}/api/v1/public/procedures/**`, (route) => {
        hit();
        return answer(route);
      });
    }
    await foreignPortal(page, [script(origin)], { scriptOrigin: origin });
    if (answer) {
      const loaded = await Promise.race([
        asked.then(() => true),
        page.waitForTimeout(ACTION_MS).then(() => false),
      ]);
      if (!loaded) fail(`${what}: el script no pidió el estado (¿no cargó?)`);
    }
    await page.waitForTimeout(500); // whatever the script does with the answer
    if ((await page.locator('[role=alert]').count()) !== 0) fail(`${what}: se muestra una cortinilla`);
    assertQuiet();
    console.log(`  ✓ ${what}: nada se muestra, ningún error de JavaScript`);
    await closeContext(page);
  }

  {
    const page = await open({ csp: true });
    let asked = 0;
    await page.route(`${BASE_URL}/api/v1/public/procedures/**`, (route) => {
      asked += 1;
      return fakeStatus(route, 200, { homoclave, button_enabled: true, banner: { shown: true }, incident: null });
    });
    await foreignPortal(page, [script(BASE_URL, '')]);
    await page.waitForTimeout(500);
    if (asked !== 0) fail('sin data-tramite, el script pidió un estado');
    if ((await page.locator('[role=alert]').count()) !== 0) fail('sin data-tramite se muestra una cortinilla');
    assertQuiet();
    console.log('  ✓ sin data-tramite: no pide nada ni muestra nada');
    await closeContext(page);
  }

  // The control: a banner shown, its text markup to be shown as text, the script twice.
  const markup = 'Falla <img src="x" data-inyectado="1"> & <b>mantenimiento</b>';
  const page = await open({ csp: true });
  await page.route(`${BASE_URL}/api/v1/public/procedures/**`, (route) =>
    fakeStatus(route, 200, {
      homoclave,
      button_enabled: false,
      banner: { shown: true, message: markup },
      incident: null,
    }),
  );
  await foreignPortal(page, [script(BASE_URL), script(BASE_URL)]);
  const alert = await expectBanner(page, markup);
  await page.waitForTimeout(500); // the second copy's answer
  if ((await page.locator('[role=alert]').count()) !== 1) fail('incluido dos veces, el script muestra dos cortinillas');
  if ((await alert.locator('img, b').count()) !== 0) fail('el texto de la dependencia se insertó como HTML');
  assertQuiet();
  console.log('  ✓ control: una sola cortinilla, el texto de la dependencia como texto');
  // The default text when the agency wrote none.
  await page.unroute(`${BASE_URL}/api/v1/public/procedures/**`);
  await page.route(`${BASE_URL}/api/v1/public/procedures/**`, (route) =>
    fakeStatus(route, 200, { homoclave, button_enabled: false, banner: { shown: true, message: null }, incident: null }),
  );
  await page.reload();
  await expectBanner(page, 'Este trámite presenta una falla y se encuentra en atención.');
  assertQuiet();
  await closeContext(page);
  expectedFailedUrls.delete(`${stopped}/embed/cortinilla.js`);
  expectedFailedUrls.delete(api);
}

// ---------------------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------------------

async function walk() {
  const page = await open();

  step('0. /estado (público, sin sesión) y /entrar: la página, y una contraseña incorrecta');
  await goto(page, '/estado');
  const states = normalize(await page.locator('main').textContent());
  if (!states.includes('Con incidencia') || !states.includes('Operando')) {
    fail('el estado público no muestra trámites «Con incidencia» y «Operando» del demo');
  }
  if (/INC-\d{4}-\d{6}/.test(states)) fail('el estado público muestra un folio interno');
  await check(page, 'estado-publico');
  // One procedure's page: its state, 90 days as bars (with their text) and past incidents.
  const troubled = page.locator('li[data-text]').filter({ hasText: 'Con incidencia' }).first().getByRole('link');
  await troubled.click();
  await page.waitForURL((u) => /^\/estado\/[^/]+$/.test(u.pathname));
  const bars = page.getByRole('img', { name: /^Últimos 90 días/ });
  if ((await bars.count()) !== 1) fail('la página del trámite no dibuja los 90 días con su texto alternativo');
  if ((await page.locator('svg.history-bars rect').count()) !== 90) fail('la gráfica no tiene 90 barras');
  const procedureText = normalize(await page.locator('main').textContent());
  if (/INC-\d{4}-\d{6}/.test(procedureText)) fail('la página pública del trámite muestra un folio interno');
  if (!procedureText.includes('Con incidencia')) fail('la página del trámite no dice «Con incidencia»');
  await check(page, 'estado-tramite');
  await goto(page, '/estado');
  await page.getByLabel('Buscar por nombre, homoclave o dependencia', { exact: true }).fill('zzz-nada');
  if ((await page.locator('li[data-text]:visible').count()) !== 0) {
    fail('la búsqueda del estado público no filtra la lista');
  }
  await goto(page, '/entrar');
  await check(page, 'entrar');
  expectedErrorPaths.add('/entrar'); // a refused sign-in may answer 401/422
  const form = loginForm(page);
  await form.getByLabel('Correo electrónico', { exact: true }).fill(HELPDESK);
  await form.getByLabel('Contraseña', { exact: true }).fill('no-es-la-contraseña');
  await submit(page, form.getByRole('button', { name: 'Entrar', exact: true }), 'Entrar');
  const refused = await texts(page, 'alert');
  if (!refused.length) fail('una contraseña incorrecta no muestra un mensaje role="alert"');
  console.log(`  alerta: «${refused.join(' | ')}»`);
  await check(page, 'entrar-contrasena-incorrecta');

  step(`1. Mesa de ayuda (${HELPDESK}): registra una incidencia y la notifica`);
  await login(page, HELPDESK);
  await expectHeader(page, { canReport: true });
  await expectSkipLinkFirst(page);
  await check(page, 'bandeja-mesa');
  await page.getByRole('navigation').getByRole('link', { name: 'Nueva incidencia', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/incidencias/nueva');
  await check(page, 'nueva-incidencia');
  const procedure = await quietProcedure('SBD-');
  const occurred = page.getByLabel('Fecha y hora en que ocurrió', { exact: true });
  if (!(await occurred.inputValue())) console.log('  aviso: «Fecha y hora en que ocurrió» no viene llena');
  // Twenty minutes ago, so that the report form's detection (five minutes ago) is after it.
  const chosen = await fill(page.locator('form').filter({ has: occurred }), {
    Trámite: new RegExp(`^${escapeRegExp(procedure.homoclave)} `),
    'Tipo de incidencia': 'No disponible',
    Descripción: 'Prueba en navegador: el trámite responde «Error 500» al enviar la solicitud.',
    'Fecha y hora en que ocurrió': mexicoCity(20),
    Medio: 'Teléfono',
  });
  console.log(`  trámite: ${chosen['Trámite']}`);
  await submit(page, page.getByRole('button', { name: 'Registrar incidencia', exact: true }), 'Registrar incidencia');
  const match = new URL(page.url()).pathname.match(/^\/incidencias\/([^/]+)$/);
  if (!match || match[1] === 'nueva') {
    const alerts = await texts(page, 'alert');
    fail(`«Registrar incidencia» no llevó a la incidencia (${page.url()}): ${alerts.join(' | ')}`);
  }
  const folio = decodeURIComponent(match[1]);
  const h1 = normalize(await page.getByRole('heading', { level: 1 }).first().textContent());
  if (!h1.includes(folio)) fail(`el <h1> «${h1}» no contiene el folio ${folio}`);
  console.log(`  folio: ${folio}`);
  await expectState(page, 'Reportada');
  await check(page, 'incidencia-reportada');
  await act(page, 'Notificar', { Severidad: 'Alta' });
  await expectState(page, 'En espera de confirmación');
  await check(page, 'incidencia-notificada');
  await logout(page);

  step(`2. Dependencia (${AGENCY}): confirma sin JavaScript, despliega cortinilla, avisa resolución`);
  await login(page, AGENCY);
  await expectHeader(page, { canReport: true });
  await openFromQueue(page, folio, 'bandeja-dependencia');
  await check(page, 'incidencia-dependencia');
  {
    const noScript = await open({ javaScript: false });
    await login(noScript, AGENCY);
    await goto(noScript, `/incidencias/${folio}`);
    await act(noScript, 'Confirmar de enterado');
    await expectState(noScript, 'En corrección');
    await check(noScript, 'sin-javascript-confirmada', { axe: false });
    await closeContext(noScript);
  }
  current = page;
  await goto(page, `/incidencias/${folio}`);
  await expectState(page, 'En corrección');
  await check(page, 'incidencia-en-correccion');
  const bannerMessage = 'Este trámite presenta una falla; estamos trabajando para restablecerlo.';
  await act(page, 'Desplegar cortinilla', { Mensaje: bannerMessage });
  await check(page, 'cortinilla-desplegada');
  console.log(`  -- el portal de ${procedure.homoclave} con la cortinilla y el botón deshabilitado`);
  await expectPortalWithBanner(procedure, bannerMessage);
  current = page;
  await act(page, 'Avisar resolución', {
    'Resumen de la corrección': 'Se reinició el servicio de firma y se amplió su memoria.',
  });
  await expectState(page, 'En validación');
  await check(page, 'incidencia-en-validacion');
  await logout(page);

  step(`3. Validación CEDN (${VALIDATOR}): aprueba`);
  await login(page, VALIDATOR);
  await expectHeader(page, { canReport: false });
  await check(page, 'bandeja-validacion');
  await goto(page, `/incidencias/${folio}`);
  await act(page, 'Aprobar validación');
  await expectState(page, 'Validada');
  await check(page, 'incidencia-validada');
  await logout(page);

  step(`4. Dependencia (${AGENCY}): retira la cortinilla y envía el formato`);
  await login(page, AGENCY);
  await goto(page, `/incidencias/${folio}`);
  await act(page, 'Retirar cortinilla');
  await check(page, 'cortinilla-retirada');
  console.log(`  -- el portal de ${procedure.homoclave} sin cortinilla y con el botón habilitado`);
  await expectPortalWithoutBanner(procedure);
  current = page;

  console.log('  -- en un teléfono (390×844)');
  {
    const phone = await open({ viewport: PHONE, phone: true });
    await login(phone, AGENCY);
    await goto(phone, '/');
    await check(phone, 'telefono-bandeja');
    await goto(phone, `/incidencias/${folio}`);
    await check(phone, 'telefono-incidencia');
    await closeContext(phone);
  }
  console.log('  -- con la Content-Security-Policy en vigor');
  {
    const strict = await open({ csp: true });
    await login(strict, AGENCY);
    for (const pathname of ['/', `/incidencias/${folio}`, '/incidencias/nueva', '/cuenta']) {
      await goto(strict, pathname);
      await strict.waitForTimeout(250); // late console reports
      assertQuiet();
      console.log(`  ✓ sin violaciones de la CSP: ${pathname}`);
    }
    await logout(strict);
    assertQuiet();
    await closeContext(strict);
  }
  current = page;

  const report = page.getByRole('form', { name: 'Formato de incidencias', exact: true });
  if ((await report.count()) !== 1) {
    fail(`no aparece el formulario «Formato de incidencias»; se ofrecen: ${await offered(page)}`);
  }
  const times = await fill(report, {
    'Fecha y hora de detección': keepOr(mexicoCity(5)),
    'Fecha y hora de restablecimiento del servicio': keepOr(mexicoCity(0)),
  });
  console.log(`  detección ${times['Fecha y hora de detección']}, restablecimiento ${times['Fecha y hora de restablecimiento del servicio']}`);
  await act(
    page,
    'Formato de incidencias',
    {
      'Descripción de la falla observada': 'El trámite respondía «Error 500» al enviar la solicitud.',
      'Impacto (usuarios o transacciones afectadas, estimado)': 'Unas 300 solicitudes no concluidas.',
      'Causa raíz': 'El servicio de firma electrónica se quedó sin memoria.',
      'Acciones aplicadas para la resolución':
        'Se reinició el servicio de firma\nSe amplió la memoria asignada',
      'Verificación y validación realizadas por la dependencia':
        'Se enviaron diez solicitudes de prueba con éxito.',
      'Acciones preventivas para evitar recurrencia':
        'Alerta de memoria al 80 %\nPrueba de carga mensual',
      'Nombre de quien elabora': 'Responsable de Pruebas',
      'Cargo de quien elabora': 'Jefatura de Departamento de Operación',
      Evidencias: 'https://www.gob.mx/evidencias/bitacora-servicio-firma',
    },
    'Enviar formato',
  );
  await check(page, 'formato-enviado');
  await logout(page);

  step(`5. Mesa de ayuda (${HELPDESK}): acepta el formato y cierra`);
  await login(page, HELPDESK);
  await goto(page, `/incidencias/${folio}`);
  await check(page, 'formato-por-revisar');
  await act(page, 'Revisión del formato', {}, 'Aceptar formato');
  await check(page, 'formato-aceptado');
  await act(page, 'Cerrar incidencia');
  await expectState(page, 'Cerrada');
  await check(page, 'incidencia-cerrada');
  await page.getByRole('navigation').getByRole('link', { name: 'Mi cuenta', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/cuenta');
  if ((await page.getByRole('heading', { name: 'Mi cuenta' }).count()) === 0) {
    fail('/cuenta no tiene un encabezado «Mi cuenta»');
  }
  await check(page, 'mi-cuenta');
  await logout(page);

  step(`6. Otra dependencia (${OTHER_EMAIL}): no ve la incidencia`);
  await login(page, OTHER_EMAIL, OTHER_PASSWORD);
  await expectHeader(page, { canReport: true });
  if ((await page.getByText('No hay incidencias').count()) === 0) {
    fail('la bandeja de otra dependencia no dice «No hay incidencias»');
  }
  if ((await page.getByRole('link', { name: folio, exact: true }).count()) > 0) {
    fail(`la bandeja de otra dependencia lista ${folio}`);
  }
  await check(page, 'bandeja-vacia');
  expectedErrorPaths.add(`/incidencias/${folio}`);
  await goto(page, `/incidencias/${folio}`, { status: 404 });
  console.log(`  GET /incidencias/${folio} → 404`);
  await check(page, 'incidencia-ajena-404');
  await logout(page);

  step(`7. Administración (${ADMIN}): una dependencia, su cadena de tres usuarios y un trámite`);
  await login(page, ADMIN);
  await goto(page, '/catalogo');
  await check(page, 'catalogo');
  await act(
    page,
    'Nueva dependencia',
    { Nombre: 'Agencia del Recorrido', Siglas: 'RECO', 'Dominios de correo': 'reco.gob.mx' },
    'Registrar dependencia',
  );
  const ladder = [
    ['Titular RECO', 'titular@reco.gob.mx', null],
    ['Dirección RECO', 'direccion@reco.gob.mx', 'Titular RECO'],
    ['Responsable RECO', 'responsable@reco.gob.mx', 'Dirección RECO'],
  ];
  for (const [name, email, boss] of ladder) {
    const fields = {
      Nombre: name,
      'Correo electrónico': email,
      Rol: 'Dependencia',
      'Dependencia (solo para el rol Dependencia)': 'RECO',
    };
    if (boss) fields['Superior jerárquico (a quien se escala)'] = boss;
    await act(page, 'Nuevo usuario', fields, 'Registrar usuario');
  }
  if ((await page.getByText('Dirección RECO → Titular RECO', { exact: true }).count()) === 0) {
    fail('el catálogo no muestra la cadena «Dirección RECO → Titular RECO» del responsable');
  }
  await act(
    page,
    'Nuevo trámite',
    {
      Homoclave: 'RECO-01-001',
      Nombre: 'Trámite del recorrido',
      Dependencia: 'RECO',
      'Dirección del trámite en gob.mx': 'https://www.gob.mx/tramites/recorrido',
      Responsable: 'Responsable RECO',
    },
    'Registrar trámite',
  );
  await check(page, 'catalogo-registrado');
  await page.getByRole('link', { name: 'Editar responsable@reco.gob.mx', exact: true }).click();
  await page.waitForLoadState('load');
  if (!normalize(await page.locator('main').textContent()).includes('Dirección RECO → Titular RECO')) {
    fail('la página del usuario no muestra su cadena jerárquica');
  }
  await check(page, 'editar-usuario');

  // A CSV with one bad row: the preview says which and why, and offers nothing to apply.
  await goto(page, '/catalogo/importar');
  await check(page, 'importar');
  const upload = async (csv, shotName) => {
    const form = page.getByRole('form', { name: 'Archivo a importar', exact: true });
    await choose(form.getByLabel('Qué contiene', { exact: true }), 'Trámites', 'Qué contiene');
    await form.getByLabel('Archivo CSV', { exact: true }).setInputFiles({
      name: 'tramites.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(csv, 'utf8'),
    });
    await submit(page, form.getByRole('button', { name: 'Ver vista previa', exact: true }), 'Ver vista previa');
    await check(page, shotName);
    return normalize(await page.locator('main').textContent());
  };
  const header = '\ufeffhomoclave;nombre;dependencia;url;responsable\n';
  const good = 'RECO-01-002;Constancia del recorrido;RECO;https://www.gob.mx/tramites/constancia;responsable@reco.gob.mx\n';
  const wrong = 'RECO-01-003;Trámite sin dependencia;NADA;https://www.gob.mx/tramites/x;responsable@reco.gob.mx\n';
  let shown = await upload(header + good + wrong, 'importar-con-error');
  if (!shown.includes('no existe la dependencia')) fail('la vista previa no explica el renglón con error');
  if ((await page.getByRole('button', { name: 'Aplicar importación', exact: true }).count()) !== 0) {
    fail('con un renglón con error no debe ofrecerse «Aplicar importación»');
  }
  console.log('  vista previa: 1 nuevo, 1 error; nada que aplicar');
  shown = await upload(header + good, 'importar-vista-previa');
  await act(page, 'Aplicar la importación', {}, 'Aplicar importación');
  if (!normalize(await page.locator('main').textContent()).includes('Importación aplicada')) {
    fail('tras aplicar no dice «Importación aplicada»');
  }
  await check(page, 'importar-aplicada');
  await goto(page, '/catalogo/cambios');
  await check(page, 'registro-de-cambios');
  await goto(page, '/politicas');
  await check(page, 'politicas-de-slo');
  // Reportes: the chart is an image with a name, its data in a real table beside it.
  await page.getByRole('navigation').getByRole('link', { name: 'Reportes', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/reportes');
  await check(page, 'reportes');
  const reportText = normalize(await page.locator('main').textContent());
  if ((await page.getByRole('img', { name: /Porcentaje de relojes cumplidos/ }).count()) !== 1) {
    fail(`«Reportes» no muestra la gráfica de cumplimiento: «${reportText.slice(0, 300)}»`);
  }
  if ((await page.getByRole('table', { name: /Totales/ }).count()) !== 1) fail('«Reportes» no muestra la tabla de totales');
  await page.getByLabel('Reloj', { exact: true }).selectOption('ack');
  await page.getByRole('button', { name: 'Consultar', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/reportes' && u.searchParams.get('reloj') === 'ack');
  await check(page, 'reportes-filtrados');
  await page.getByRole('link', { name: 'Simular otras metas', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/reportes/simulacion');
  await check(page, 'simulacion-de-metas');
  await page.getByLabel('Confirmación de enterado, Alta, en minutos', { exact: true }).fill('45');
  await page.getByRole('button', { name: 'Simular', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/reportes/simulacion' && u.searchParams.get('m_ack_high') === '45');
  if ((await page.getByRole('table', { name: /A: versión \d+ \(vigente\) · B: borrador/ }).count()) !== 1) {
    fail('la simulación no muestra la tabla de resultados');
  }
  await check(page, 'simulacion-resultado');
  // The evidence page of an incident, as it prints.
  await goto(page, '/');
  await page.locator('main a[href^="/incidencias/INC-"]').first().click();
  await page.waitForURL((u) => /^\/incidencias\/INC-/.test(u.pathname));
  await page.getByRole('link', { name: 'Evidencia para imprimir o guardar en PDF', exact: true }).click();
  await page.waitForURL((u) => u.pathname.endsWith('/evidencia'));
  if ((await page.getByRole('heading', { name: 'Cómo verificar este registro', exact: true }).count()) !== 1) {
    fail('la evidencia no explica cómo verificar el registro');
  }
  await page.emulateMedia({ media: 'print' });
  if (await page.getByRole('navigation', { name: 'Principal' }).isVisible()) fail('la navegación se imprime en la evidencia');
  await check(page, 'evidencia-impresa');
  await page.emulateMedia({ media: 'screen' });
  await goto(page, '/salida');
  await check(page, 'bandeja-de-salida');
  await page.getByRole('link', { name: /^Ver correo/ }).first().click();
  await page.waitForLoadState('load');
  await check(page, 'correo-vista-previa');
  // Webhooks: a subscription, its secret shown once, its delivery log.
  await page.getByRole('navigation').getByRole('link', { name: 'Webhooks', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/webhooks');
  await check(page, 'webhooks');
  const hookForm = page.getByRole('form', { name: 'Nueva suscripción', exact: true });
  await hookForm.getByLabel('Dirección del receptor', { exact: true }).fill('https://www.gob.mx/webhooks/incidencias');
  await hookForm.getByLabel(/^procedure\.button/).check();
  await hookForm.getByLabel(/^procedure\.banner/).check();
  await submit(page, hookForm.getByRole('button', { name: 'Crear suscripción', exact: true }), 'Crear suscripción');
  const created = normalize((await texts(page, 'status')).join(' '));
  if (!/whsec_[A-Za-z0-9+/=]{40,}/.test(created)) fail(`no se muestra el secreto de la suscripción creada: «${created}»`);
  await check(page, 'webhooks-creada');
  await page.getByRole('link', { name: 'https://www.gob.mx/webhooks/incidencias', exact: true }).first().click();
  await page.waitForURL((u) => /^\/webhooks\/\d+$/.test(u.pathname));
  const detailText = normalize(await page.locator('main').textContent());
  if (!detailText.includes('procedure.button, procedure.banner')) fail('el detalle del webhook no lista sus eventos');
  if (/whsec_[A-Za-z0-9+/=]{40,}/.test(detailText)) fail('el detalle del webhook vuelve a mostrar el secreto completo');
  await check(page, 'webhook-registro');
  await logout(page);

  step(`8. Mesa de ayuda (${HELPDESK}): un correo por revisar se vuelve incidencia`);
  await login(page, HELPDESK);
  await goto(page, '/correos');
  await check(page, 'correos-por-revisar');
  const openLink = page.getByRole('link', { name: /^Abrir una incidencia con este correo/ }).first();
  if ((await openLink.count()) === 0) fail('no hay correos por revisar con «Abrir una incidencia con este correo»');
  await openLink.click();
  await page.waitForURL((u) => u.pathname === '/incidencias/nueva');
  await check(page, 'incidencia-desde-correo');
  const description = await page.getByLabel('Descripción', { exact: true }).inputValue();
  if (!description.trim()) fail('la descripción no viene del correo');
  const newForm = page.getByRole('form', { name: 'Nueva incidencia', exact: true });
  await fill(newForm, { 'Trámite': /^SBD-/ });
  await submit(page, newForm.getByRole('button', { name: 'Registrar incidencia', exact: true }), 'Registrar incidencia');
  await expectState(page, 'Reportada');
  const medium = normalize(await page.locator('.facts').first().textContent());
  if (!medium.includes('Correo electrónico')) fail('la incidencia abierta desde un correo no dice Medio: Correo electrónico');
  await check(page, 'incidencia-abierta-desde-correo');
  await goto(page, '/correos');
  if ((await page.getByText('Falla reportada por correo', { exact: true }).count()) !== 0) {
    fail('el correo convertido en incidencia sigue por revisar');
  }
  await logout(page);
  await closeContext(page);

  step('9. La cortinilla insertada en un portal ajeno, con el servicio detenido o con fallas');
  await embedFailures();
}

// ---------------------------------------------------------------------------------------

async function main() {
  rmSync(SCREENSHOTS, { recursive: true, force: true });
  mkdirSync(SCREENSHOTS, { recursive: true });
  console.log(`recorrido del navegador: ${BASE_URL}; capturas en ${SCREENSHOTS}`);
  const started = Date.now();
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    console.log(`Chromium ${browser.version()} (${CHROMIUM})`);
    await walk();
    console.log(`\nRECORRIDO COMPLETO: ${shots} páginas auditadas en ${Math.round((Date.now() - started) / 1000)} s`);
  } catch (err) {
    process.exitCode = 1;
    console.error(`\nFALLO: ${err instanceof WalkFailure ? err.message : err.stack}`);
    if (current && !current.isClosed()) {
      console.error(`  en ${current.url()}`);
      const shot = path.join(SCREENSHOTS, 'FALLO.png');
      await current
        .screenshot({ path: shot, fullPage: true })
        .then(() => console.error(`  captura: ${shot}`))
        .catch(() => {});
    }
  } finally {
    await browser?.close().catch(() => {});
    for (const { server } of foreign.servers.values()) server.close();
  }
}

await main();
