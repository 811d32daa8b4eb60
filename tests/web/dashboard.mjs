// The dashboard in a real browser: Debian's headless Chromium driven by puppeteer-core.
// Checks that the page loads with a household read token, that the energy chart's points are
// the API's series, that top devices match, that switching 5 m / 1 h re-renders, that the
// device panel shows power and alert rules, that the operator view fills from /admin/status
// and /metrics, that a wrong token gives a clear message, and that the console has no errors.
// Screenshots go to $JOULE_WEB_OUT. Run by tests/web/run browser.
import { closedPort as freeClosedPort, env, requireTool as require } from './common.mjs';
const puppeteer = require('puppeteer-core');
const base = env('JOULE_WEB_BASE');
const household = env('JOULE_WEB_HOUSEHOLD');
const device = env('JOULE_WEB_DEVICE');
const admin = env('JOULE_WEB_ADMIN');
const read = env('JOULE_WEB_READ');
const readAlerts = env('JOULE_WEB_READ_ALERTS');
const out = env('JOULE_WEB_OUT');

const failures = [];
const check = (ok, what) => {
  if (!ok)
    failures.push(what);
  console.log((ok ? 'ok   ' : 'FAIL ') + what);
};

async function api(path, token) {
  const res = await fetch(base + path, { headers: { Authorization: 'Bearer ' + token } });
  if (!res.ok)
    throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

// Two alert rules on the device, so the device panel has something to list: one that never
// fires, one that fires at once (any reading is over 0 W; its webhook goes to a closed port, so
// the event shows a failed delivery attempt).
const closedPort = await freeClosedPort();
async function createRule(metric, window, value) {
  const res = await fetch(base + '/alerts/rules', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + admin, 'Content-Type': 'application/json' },
    body: JSON.stringify({ scope: 'device', scope_id: device, metric, window, op: '>', value,
                           webhook_url: `http://127.0.0.1:${closedPort}/h`, webhook_secret: 's' }),
  });
  check(res.status === 201, `set-up: alert rule ${metric} > ${value} created`);
  return res.json();
}
const rule = await createRule('power_w_avg', '5m', 1e9);
const firing = await createRule('power_w_max', '1m', 0);
let events = [];
for (let i = 0; i < 60 && !events.length; i++) {
  events = (await api('/alerts/events?rule_id=' + firing.id, admin)).events;
  if (!events.length)
    await new Promise((r) => setTimeout(r, 250));
}
check(events.length > 0, 'set-up: the firing rule has an event');

const browser = await puppeteer.launch({
  executablePath: process.env.JOULE_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // As root Chromium needs --no-sandbox; the rest keeps it off the (closed) network.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic',
         '--no-first-run', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--disable-extensions', '--disable-default-apps'],
  defaultViewport: { width: 1280, height: 900 },
});

// A fresh page (own sessionStorage) that records console errors, page errors and failed loads.
async function newPage(name) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error')
      page.errors.push(`${name} console: ${m.text()} ${JSON.stringify(m.location())}`);
  });
  page.on('pageerror', (e) => page.errors.push(`${name} page error: ${e.message}`));
  page.on('requestfailed', (r) => page.errors.push(`${name} request failed: ${r.url()} ${r.failure()?.errorText}`));
  return page;
}

async function typeToken(page, token) {
  await page.waitForSelector('#token-input', { visible: true });
  await page.type('#token-input', token);
  await Promise.all([page.click('#token-form button[type=submit]')]);
}

// What the energy chart shows right now, and which API call it came from.
const energyChart = (page) => page.evaluate(() => {
  const el = document.getElementById('energy-chart');
  const u = window.jouleDashboard.charts.energy;
  return { src: el.dataset.src, step: el.dataset.step,
           xs: Array.from(u.data[0]), vs: Array.from(u.data[1]) };
});

async function compareEnergy(page, step, notSrc) {
  await page.waitForFunction((s, old) => {
    const el = document.getElementById('energy-chart');
    return el.dataset.step === s && el.dataset.src !== old && window.jouleDashboard.charts.energy;
  }, { timeout: 15000 }, step, notSrc || '');
  const shown = await energyChart(page);
  const answer = await api(shown.src, readAlerts);
  const xs = answer.series.map((p) => Date.parse(p.t) / 1000);
  const vs = answer.series.map((p) => p.v);
  check(answer.step === step && shown.step === step, `energy chart shows step ${step}`);
  check(xs.length > 0, `energy ${step}: the API series has points (${xs.length})`);
  check(JSON.stringify(shown.xs) === JSON.stringify(xs) &&
        JSON.stringify(shown.vs) === JSON.stringify(vs),
        `energy ${step}: the chart's ${shown.xs.length} points equal the API's ${xs.length}`);
  return shown;
}

try {
  // --- household view with a household token (read + alerts) ----------------------------------
  const page = await newPage('household');
  const resp = await page.goto(`${base}/ui/#household=${household}`, { waitUntil: 'load' });
  const headers = resp.headers();
  check(/script-src 'self'/.test(headers['content-security-policy'] || '') &&
        !/unsafe-inline/.test(headers['content-security-policy'] || ''),
        'page has a Content-Security-Policy without inline scripts');
  check(headers['x-content-type-options'] === 'nosniff', 'page has X-Content-Type-Options');
  await typeToken(page, readAlerts);
  const five = await compareEnergy(page, '5m');
  check(await page.evaluate(() => sessionStorage.getItem('joule.token') !== null),
        'token kept in sessionStorage');

  await page.waitForSelector('#top-devices tbody tr[data-device-id]');
  const rows = await page.$$eval('#top-devices tbody tr[data-device-id]', (trs) =>
      trs.map((tr) => ({ device_id: tr.dataset.deviceId, energy_wh: Number(tr.dataset.energyWh) })));
  const top = await api(`/analytics/households/${household}/top-devices?limit=10`, readAlerts);
  check(rows.length > 0 && JSON.stringify(rows) === JSON.stringify(top.devices),
        `top devices: the table's ${rows.length} rows equal the API's ${top.devices.length}`);

  const badge = await page.$eval('#freshness', (b) => ({ text: b.textContent, hidden: b.hidden,
                                                          iso: b.dataset.freshAsOf }));
  check(!badge.hidden && /^fresh as of/.test(badge.text) && !Number.isNaN(Date.parse(badge.iso)),
        `freshness badge shown: "${badge.text}"`);

  await page.click('#step-1h');
  const hour = await compareEnergy(page, '1h');
  check(hour.xs.length < five.xs.length && hour.src !== five.src,
        `switching to 1 h re-rendered (${five.xs.length} -> ${hour.xs.length} points)`);
  await page.click('#step-5m');
  const back = await compareEnergy(page, '5m', hour.src);
  // The range picker: the last 6 hours instead of 24 asks for a shorter window.
  await page.select('#range', '6h');
  const six = await compareEnergy(page, '5m', back.src);
  const span = (src) => { const q = new URL(src, base).searchParams;
                          return (Date.parse(q.get('end')) - Date.parse(q.get('start'))) / 3600e3; };
  check(Math.round(span(back.src)) === 24 && Math.round(span(six.src)) === 6,
        `range picker: 24 h -> 6 h window (${span(back.src).toFixed(2)} h -> ${span(six.src).toFixed(2)} h)`);
  await page.select('#range', '24h');
  await compareEnergy(page, '5m', six.src);

  // The device panel: the top device is selected; pick ours explicitly.
  await page.click(`#top-devices tr[data-device-id="${device}"]`);
  await page.waitForFunction((d) => {
    const el = document.getElementById('power-chart');
    return el.dataset.src && el.dataset.src.includes(d);
  }, { timeout: 15000 }, device);
  const power = await page.evaluate(() => {
    const u = window.jouleDashboard.charts.power;
    return { src: document.getElementById('power-chart').dataset.src,
             xs: Array.from(u.data[0]), avg: Array.from(u.data[1]), max: Array.from(u.data[2]) };
  });
  const powerApi = await api(power.src, readAlerts);
  check(power.xs.length > 0 &&
        JSON.stringify(power.avg) === JSON.stringify(powerApi.series.map((p) => p.avg)) &&
        JSON.stringify(power.max) === JSON.stringify(powerApi.series.map((p) => p.max)),
        `device power: avg and max (${power.xs.length} points) equal the API's`);
  await page.waitForSelector(`#rules tr[data-rule-id="${rule.id}"]`, { timeout: 15000 });
  const ruleRows = await page.$$eval('#rules tr[data-rule-id]', (trs) => trs.map((t) => t.dataset.ruleId));
  check(ruleRows.includes(rule.id) && ruleRows.includes(firing.id),
        `device panel lists the device's ${ruleRows.length} alert rules`);
  const eventRows = await page.$$eval('#events tr[data-alert-id]', (trs) => trs.map((t) => t.dataset.alertId));
  check(events.length > 0 && eventRows.includes(events[0].alert_id),
        `device panel shows the firing rule's event (${eventRows.length} events listed)`);
  await page.screenshot({ path: `${out}/dashboard.png`, fullPage: true });
  check(page.errors.length === 0, 'household view: no console errors' +
        (page.errors.length ? '\n    ' + page.errors.join('\n    ') : ''));

  // --- a read-only token: analytics work, the alerts panel says why it is empty --------------
  const ro = await newPage('read-only');
  await ro.goto(`${base}/ui/#household=${household}&device=${device}`, { waitUntil: 'load' });
  await typeToken(ro, read);
  await ro.waitForSelector('#alerts-note:not([hidden])', { timeout: 15000 });
  const note = await ro.$eval('#alerts-note', (n) => n.textContent);
  check(/no alerts scope/.test(note), `read-only token: "${note}"`);
  // Chromium logs the refused calls (403) itself; nothing else may appear.
  const unexpected = ro.errors.filter((e) => !/status of 403/.test(e));
  check(unexpected.length === 0, 'read-only token: no console errors but the 403s' +
        (unexpected.length ? '\n    ' + unexpected.join('\n    ') : ''));

  // --- operator view with an admin token -------------------------------------------------------
  const op = await newPage('operator');
  await op.goto(`${base}/ui/#view=operator`, { waitUntil: 'load' });
  await typeToken(op, admin);
  await op.waitForSelector('#op-rollups tr[data-rollup]', { timeout: 15000 });
  const rollups = await op.$$eval('#op-rollups tr[data-rollup]', (trs) => trs.map((t) => t.dataset.rollup));
  check(['device_1h', 'device_1m', 'household_5m'].every((r) => rollups.includes(r)),
        `operator view lists the rollups (${rollups.join(', ')})`);
  const figures = await op.$$eval('#op-figures tr', (trs) => trs.map((t) => t.dataset.figure));
  check(figures.some((f) => /DB pool/.test(f)) && figures.some((f) => /outbox/.test(f)),
        'operator view shows DB pool and outbox figures');
  const restarts = await op.$$eval('#op-restarts tbody tr', (trs) => trs.length);
  check(restarts > 0, `operator view shows actor restarts (${restarts} actors)`);
  await op.screenshot({ path: `${out}/operator.png`, fullPage: true });
  check(op.errors.length === 0, 'operator view: no console errors' +
        (op.errors.length ? '\n    ' + op.errors.join('\n    ') : ''));

  // --- a wrong token ---------------------------------------------------------------------------
  const wrong = await newPage('wrong-token');
  await wrong.goto(`${base}/ui/#household=${household}`, { waitUntil: 'load' });
  await typeToken(wrong, 'jl_' + 'A'.repeat(43));
  await wrong.waitForFunction(() => /token was rejected/.test(
      document.getElementById('message').textContent), { timeout: 15000 });
  const msg = await wrong.$eval('#message', (m) => ({ text: m.textContent, hidden: m.hidden }));
  const formBack = await wrong.$eval('#token-form', (f) => !f.hidden);
  check(!msg.hidden && formBack, `wrong token: "${msg.text}" and the token form is back`);
  check(await wrong.evaluate(() => sessionStorage.getItem('joule.token') === null),
        'wrong token: not kept');
  await wrong.screenshot({ path: `${out}/wrong-token.png` });
  // Chromium logs the refused call itself: seeing it proves the console is being watched.
  const wrongErrors = wrong.errors.filter((e) => !/status of 401/.test(e));
  check(wrong.errors.length > wrongErrors.length, 'wrong token: the 401 reached the console log');
  check(wrongErrors.length === 0, 'wrong token: no console errors but the 401s' +
        (wrongErrors.length ? '\n    ' + wrongErrors.join('\n    ') : ''));
} catch (e) {
  failures.push('exception: ' + (e.stack || e));
  console.log('FAIL ' + (e.stack || e));
} finally {
  await browser.close();
}

console.log(`screenshots in ${out}`);
if (failures.length) {
  console.log(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log('dashboard: every check passed');
