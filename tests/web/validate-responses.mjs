// Validates real answers of every route against http/openapi.json (as served at /openapi.json):
// the status must be one the operation documents, the content type its media type, the body
// its schema (JSON Schema 2020-12, ajv + ajv-formats), and documented headers present. Fails
// when any answer deviates, when an operation got no validated 2xx answer, or when one of the
// common error statuses was never seen. Run by tests/web/run responses.
import { closedPort as freeClosedPort, env, requireTool as require } from './common.mjs';
import net from 'node:net';
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;
const base = env('JOULE_WEB_BASE');
const household = env('JOULE_WEB_HOUSEHOLD');
const otherHousehold = env('JOULE_WEB_OTHER_HOUSEHOLD');
const device = env('JOULE_WEB_DEVICE');
const admin = env('JOULE_WEB_ADMIN');
const read = env('JOULE_WEB_READ');
const ingest = env('JOULE_WEB_INGEST');

const failures = [];
const covered = new Set();      // "GET /path" with a validated 2xx
const statusesSeen = new Set();
let validated = 0;

const specRes = await fetch(base + '/openapi.json');
const spec = await specRes.json();
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(spec, 'openapi.json');

const pointer = (...parts) =>
  parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

// Path templates as regular expressions, most specific (fewest parameters) first.
const templates = Object.keys(spec.paths).map((t) => ({
  template: t,
  re: new RegExp('^' + t.replace(/\{[^}]+\}/g, '[^/]+') + '/?$'),
  params: (t.match(/\{/g) || []).length,
})).sort((a, b) => a.params - b.params);

function findTemplate(path) {
  const t = templates.find((x) => x.re.test(path));
  return t ? t.template : null;
}

// The response object (and its JSON pointer) that documents `status` for method + path.
function documented(method, template, status) {
  const item = spec.paths[template];
  const ops = Object.keys(item).filter((k) => k !== 'parameters');
  let opKey = ops.includes(method.toLowerCase()) ? method.toLowerCase() : null;
  if (!opKey && status === 405)
    opKey = ops[0];  // a wrong method: any operation of the path documents 405
  if (!opKey)
    return null;
  let resp = item[opKey].responses[String(status)];
  let ptr = '#' + '/' + pointer('paths', template, opKey, 'responses', String(status));
  if (!resp)
    return null;
  if (resp.$ref) {
    ptr = resp.$ref;
    resp = resp.$ref.slice(2).split('/').reduce((o, k) => o[k.replace(/~1/g, '/')
                                                              .replace(/~0/g, '~')], spec);
  }
  return { resp, ptr, opKey };
}

function check(what, method, path, res, body) {
  const status = res.status;
  statusesSeen.add(status);
  const template = findTemplate(path);
  const fail = (msg) => failures.push(`${what}: ${method} ${path} -> ${status}: ${msg}`);
  if (!template) {
    // No such path: the generic 404 (or 401 first without a valid token).
    if (status !== 404 && status !== 401)
      fail('an unknown path must answer 401 or 404');
    validateBody(what, fail, '#/components/responses/NotFound', 'application/json', res, body);
    return;
  }
  const doc = documented(method, template, status);
  if (!doc)
    return fail('status not documented for this operation');
  const { resp, ptr } = doc;
  for (const [h, def] of Object.entries(resp.headers || {})) {
    const value = res.headers.get(h);
    if (!value) {
      fail(`documented header ${h} missing`);
      continue;
    }
    const schema = (def.$ref ? spec.components.headers[def.$ref.split('/').pop()] : def).schema;
    if (schema && schema.enum && !schema.enum.includes(value))
      fail(`header ${h}: ${value} is not one of ${schema.enum}`);
    if (schema && schema.type === 'integer' && !/^[0-9]+$/.test(value))
      fail(`header ${h}: ${value} is not an integer`);
  }
  if (!resp.content) {
    if (body.length)
      fail('documented without a body, but one was sent');
  } else {
    const type = (res.headers.get('content-type') || '').split(';')[0].trim();
    if (!resp.content[type])
      return fail(`content type ${type} not documented (${Object.keys(resp.content)})`);
    validateBody(what, fail, ptr, type, res, body);
  }
  validated++;
  if (status >= 200 && status < 300)
    covered.add(method.toUpperCase() + ' ' + template);
}

function validateBody(what, fail, ptr, type, res, body) {
  if (type !== 'application/json')
    return;
  let value;
  try {
    value = JSON.parse(body);
  } catch (e) {
    return fail('body is not JSON: ' + e.message);
  }
  const schemaRef = 'openapi.json' + ptr + '/' + pointer('content', type, 'schema');
  const validate = ajv.getSchema(schemaRef);
  if (!validate)
    return fail('no schema at ' + schemaRef);
  if (!validate(value))
    fail('body does not match its schema: ' + ajv.errorsText(validate.errors) + '\n  body: ' +
         body.slice(0, 400));
}

async function call(what, method, path, { token, body, headers } = {}) {
  const h = Object.assign({}, headers || {});
  if (token)
    h.Authorization = 'Bearer ' + token;
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch(base + path, { method, headers: h, body });
  const text = await res.text();
  check(what, method, path.split('?')[0], res, text);
  return { status: res.status, json: () => JSON.parse(text), text, headers: res.headers };
}

// For answers fetch cannot produce (a refused head): one raw request, the answer parsed by hand.
function raw(what, method, path, head) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(new URL(base).port), '127.0.0.1');
    let data = '';
    sock.on('data', (d) => { data += d; });
    sock.on('error', reject);
    sock.on('close', () => {
      const [headText, body = ''] = data.split('\r\n\r\n');
      const lines = headText.split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = new Map();
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
      }
      const res = { status, headers: { get: (k) => headers.get(k.toLowerCase()) } };
      check(what, method, path, res, body);
      resolve(status);
    });
    sock.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${head}\r\n`);
  });
}

function expect(what, got, want) {
  if (got !== want)
    failures.push(`${what}: status ${got}, expected ${want}`);
}

const uuid0 = '00000000-0000-4000-8000-000000000000';
const iso = (ms) => new Date(ms).toISOString();
const now = Date.now();

// --- open routes -------------------------------------------------------------------------------
expect('healthz', (await call('healthz', 'GET', '/healthz')).status, 200);
expect('readyz', (await call('readyz', 'GET', '/readyz')).status, 200);
expect('openapi', (await call('openapi', 'GET', '/openapi.json')).status, 200);
expect('ui', (await call('ui', 'GET', '/ui')).status, 200);
expect('ui/', (await call('ui/', 'GET', '/ui/')).status, 200);
for (const f of spec.paths['/ui/{asset}'].parameters[0].schema.enum) {
  const r = await call('ui asset', 'GET', '/ui/' + f);
  expect('ui asset ' + f, r.status, 200);
  if (r.headers.get('x-content-type-options') !== 'nosniff' ||
      !/script-src 'self'/.test(r.headers.get('content-security-policy') || ''))
    failures.push('ui asset ' + f + ': security headers missing');
}
expect('ui unknown asset', (await call('ui unknown', 'GET', '/ui/nope.js')).status, 404);

// --- operations --------------------------------------------------------------------------------
expect('metrics', (await call('metrics', 'GET', '/metrics', { token: admin })).status, 200);
expect('metrics no token', (await call('metrics', 'GET', '/metrics')).status, 401);
expect('metrics read token', (await call('metrics', 'GET', '/metrics', { token: read })).status,
       403);
expect('admin status', (await call('status', 'GET', '/admin/status', { token: admin })).status,
       200);
expect('admin config', (await call('config', 'GET', '/admin/config', { token: admin })).status,
       200);
expect('bad token', (await call('bad token', 'GET', '/admin/status',
                                { token: 'jl_' + 'x'.repeat(43) })).status, 401);

// --- analytics ---------------------------------------------------------------------------------
const energy = '/analytics/households/' + household + '/energy';
let r = await call('energy', 'GET', energy, { token: read });
expect('energy default', r.status, 200);
if (r.status === 200 && r.json().series.length === 0)
  failures.push('energy: the seeded household has no points (the test would prove little)');
r = await call('energy 1h', 'GET', `${energy}?step=1h&start=${iso(now - 6 * 3600e3)}&end=${iso(now)}`,
               { token: admin });
expect('energy 1h', r.status, 200);
expect('energy bad step', (await call('energy', 'GET', energy + '?step=1m', { token: read })).status, 400);
expect('energy bad id', (await call('energy', 'GET', '/analytics/households/nope/energy', { token: read })).status, 400);
expect('energy unknown', (await call('energy', 'GET', `/analytics/households/${uuid0}/energy`, { token: admin })).status, 404);
expect('energy other household', (await call('energy', 'GET', `/analytics/households/${otherHousehold}/energy`, { token: read })).status, 404);
expect('energy unknown parameter', (await call('energy', 'GET', energy + '?foo=1', { token: read })).status, 400);
expect('energy range too large', (await call('energy', 'GET', `${energy}?step=5m&start=2000-01-01T00:00:00Z&end=2026-01-01T00:00:00Z`, { token: read })).status, 400);
expect('energy invalid range', (await call('energy', 'GET', `${energy}?start=${iso(now)}&end=${iso(now - 3600e3)}`, { token: read })).status, 400);
expect('energy ingest token', (await call('energy', 'GET', energy, { token: ingest })).status, 403);
const power = '/analytics/devices/' + device + '/power';
r = await call('power', 'GET', power + '?step=5m&start=' + iso(now - 3 * 3600e3), { token: read });
expect('power', r.status, 200);
expect('power default', (await call('power', 'GET', power, { token: admin })).status, 200);
expect('power unknown', (await call('power', 'GET', `/analytics/devices/${uuid0}/power`, { token: read })).status, 404);
expect('power bad start', (await call('power', 'GET', power + '?start=yesterday', { token: read })).status, 400);
const top = '/analytics/households/' + household + '/top-devices';
r = await call('top', 'GET', top + '?limit=3', { token: read });
expect('top', r.status, 200);
if (r.status === 200 && r.json().devices.length === 0)
  failures.push('top-devices: the seeded household has no devices');
expect('top bad limit', (await call('top', 'GET', top + '?limit=0', { token: read })).status, 400);

// --- ingest ------------------------------------------------------------------------------------
const reading = (d, ms) => ({ ts: iso(ms), device_id: d, power_w: 120.5, energy_wh: 0.33 });
const batch = { readings: [reading(device, now - 30e3), reading(device, now - 20e3)] };
r = await call('telemetry', 'POST', '/telemetry', { token: ingest, body: batch });
expect('telemetry', r.status, 202);
const key = { 'Idempotency-Key': 'web-' + now };
expect('telemetry idempotent', (await call('telemetry', 'POST', '/telemetry', { token: ingest, body: batch, headers: key })).status, 202);
expect('telemetry replay', (await call('telemetry', 'POST', '/telemetry', { token: ingest, body: batch, headers: key })).status, 202);
expect('telemetry key reused', (await call('telemetry', 'POST', '/telemetry', { token: ingest, body: { readings: [reading(device, now - 10e3)] }, headers: key })).status, 422);
expect('telemetry invalid', (await call('telemetry', 'POST', '/telemetry', { token: ingest, body: { readings: [{ ts: 'x' }] } })).status, 400);
expect('telemetry unknown device', (await call('telemetry', 'POST', '/telemetry', { token: ingest, body: { readings: [reading(uuid0, now)] } })).status, 422);
expect('telemetry bad json', (await call('telemetry', 'POST', '/telemetry', { token: ingest, body: '{' })).status, 400);
expect('telemetry read token', (await call('telemetry', 'POST', '/telemetry', { token: read, body: batch })).status, 403);

// --- alerts ------------------------------------------------------------------------------------
// A closed loopback port: deliveries fail fast (connect_failed), so events carry delivery state.
const closedPort = await freeClosedPort();
const rule = {
  scope: 'device', scope_id: device, metric: 'power_w_max', window: '1m', op: '>', value: 1,
  cooldown_sec: 0, webhook_url: `http://127.0.0.1:${closedPort}/hook`, webhook_secret: 's3cret',
};
r = await call('rule create', 'POST', '/alerts/rules', { token: admin, body: rule });
expect('rule create', r.status, 201);
const ruleId = r.status === 201 ? r.json().id : uuid0;
expect('rules list', (await call('rules', 'GET', '/alerts/rules', { token: admin })).status, 200);
expect('rule get', (await call('rule', 'GET', '/alerts/rules/' + ruleId, { token: admin })).status, 200);
expect('rule put', (await call('rule', 'PUT', '/alerts/rules/' + ruleId, { token: admin, body: Object.assign({}, rule, { value: 2 }) })).status, 200);
expect('rule unknown', (await call('rule', 'GET', '/alerts/rules/' + uuid0, { token: admin })).status, 404);
expect('rule bad id', (await call('rule', 'GET', '/alerts/rules/nope', { token: admin })).status, 400);
expect('rule invalid', (await call('rule', 'POST', '/alerts/rules', { token: admin, body: Object.assign({}, rule, { extra: 1 }) })).status, 400);
expect('rule unknown scope', (await call('rule', 'POST', '/alerts/rules', { token: admin, body: Object.assign({}, rule, { scope_id: uuid0 }) })).status, 404);
expect('rules read token', (await call('rules', 'GET', '/alerts/rules', { token: read })).status, 403);
// A reading over the threshold fires the rule on the open bucket; wait for its event.
await call('telemetry', 'POST', '/telemetry', { token: ingest, body: { readings: [Object.assign(reading(device, Date.now() - 1000), { power_w: 5000 })] } });
let events = [];
for (let i = 0; i < 60 && !events.length; i++) {
  r = await call('events', 'GET', '/alerts/events?rule_id=' + ruleId, { token: admin });
  events = r.status === 200 ? r.json().events : [];
  if (!events.length)
    await new Promise((res) => setTimeout(res, 250));
}
if (!events.length)
  failures.push('alerts: no event within 15 s (the events schema was checked on an empty list only)');
expect('events all', (await call('events', 'GET', `/alerts/events?limit=5&since=${iso(now - 3600e3)}`, { token: admin })).status, 200);
expect('events bad limit', (await call('events', 'GET', '/alerts/events?limit=0', { token: admin })).status, 400);
expect('events bad rule', (await call('events', 'GET', '/alerts/events?rule_id=x', { token: admin })).status, 400);
expect('rule delete', (await call('rule', 'DELETE', '/alerts/rules/' + ruleId, { token: admin })).status, 204);
expect('rule delete again', (await call('rule', 'DELETE', '/alerts/rules/' + ruleId, { token: admin })).status, 404);
// Receivers, silences, redelivery (issue 10).
r = await call('receiver create', 'POST', '/alerts/receivers', { token: admin, body: { name: 'ops', kind: 'webhook', url: `http://127.0.0.1:${closedPort}/g`, secret: 's', group_by: ['household_id'] } });
expect('receiver create', r.status, 201);
const receiverId = r.status === 201 ? r.json().id : uuid0;
expect('receivers list', (await call('receivers', 'GET', '/alerts/receivers', { token: admin })).status, 200);
expect('receiver get', (await call('receiver', 'GET', '/alerts/receivers/' + receiverId, { token: admin })).status, 200);
expect('receiver put', (await call('receiver', 'PUT', '/alerts/receivers/' + receiverId, { token: admin, body: { name: 'ops2', kind: 'webhook', url: `http://127.0.0.1:${closedPort}/g`, secret: 't' } })).status, 200);
r = await call('routed rule', 'POST', '/alerts/rules', { token: admin, body: { scope: 'device', scope_id: device, metric: 'silence_sec', op: '>', value: 600, receiver_id: receiverId, name: 'quiet', labels: { team: 'energy' } } });
expect('routed rule', r.status, 201);
const routedId = r.status === 201 ? r.json().id : uuid0;
expect('receiver in use', (await call('receiver', 'DELETE', '/alerts/receivers/' + receiverId, { token: admin })).status, 409);
expect('routed rule delete', (await call('rule', 'DELETE', '/alerts/rules/' + routedId, { token: admin })).status, 204);
expect('receiver delete', (await call('receiver', 'DELETE', '/alerts/receivers/' + receiverId, { token: admin })).status, 204);
expect('receiver unknown', (await call('receiver', 'GET', '/alerts/receivers/' + uuid0, { token: admin })).status, 404);
expect('receiver invalid', (await call('receivers', 'POST', '/alerts/receivers', { token: admin, body: { name: 'x', kind: 'pager', url: 'http://127.0.0.1/' } })).status, 400);
r = await call('silence create', 'POST', '/alerts/silences', { token: admin, body: { matchers: { household_id: household, team: 'energy' }, ends_at: iso(Date.now() + 3600e3), comment: 'validation' } });
expect('silence create', r.status, 201);
const silenceId = r.status === 201 ? r.json().id : uuid0;
expect('silences list', (await call('silences', 'GET', '/alerts/silences', { token: admin })).status, 200);
expect('silence get', (await call('silence', 'GET', '/alerts/silences/' + silenceId, { token: admin })).status, 200);
expect('silence delete', (await call('silence', 'DELETE', '/alerts/silences/' + silenceId, { token: admin })).status, 204);
expect('silence unknown', (await call('silence', 'GET', '/alerts/silences/' + uuid0, { token: admin })).status, 404);
expect('silence invalid', (await call('silences', 'POST', '/alerts/silences', { token: admin, body: { matchers: {} } })).status, 400);
expect('redeliver unknown', (await call('redeliver', 'POST', '/alerts/events/' + uuid0 + '/redeliver', { token: admin })).status, 404);
{
  // A receiver answering 400 fails a notification at once: redeliver it.
  const { createServer } = await import('node:http');
  const refusing = createServer((req, res) => { res.statusCode = 400; res.end(); });
  const refusingPort = await new Promise((resolve) => refusing.listen(0, '127.0.0.1', () => resolve(refusing.address().port)));
  r = await call('silent rule', 'POST', '/alerts/rules', { token: admin, body: { scope: 'device', scope_id: device, metric: 'silence_sec', op: '>=', value: 0, cooldown_sec: 0, webhook_url: `http://127.0.0.1:${refusingPort}/h`, webhook_secret: 's' } });
  expect('silent rule', r.status, 201);
  const silentId = r.status === 201 ? r.json().id : uuid0;
  let failed = null;
  for (let i = 0; i < 75 && !failed; ++i) {
    const ev = await call('events', 'GET', '/alerts/events?rule_id=' + silentId, { token: admin });
    const e = ev.status === 200 ? ev.json().events.find((x) => x.delivery.status === 'failed') : null;
    if (e) failed = e.alert_id;
    else await new Promise((res) => setTimeout(res, 200));
  }
  if (!failed)
    failures.push('alerts: no failed notification within 15 s to redeliver');
  else
    expect('redeliver', (await call('redeliver', 'POST', '/alerts/events/' + failed + '/redeliver', { token: admin })).status, 202);
  expect('silent rule delete', (await call('rule', 'DELETE', '/alerts/rules/' + silentId, { token: admin })).status, 204);
  refusing.close();
}

// --- tokens ------------------------------------------------------------------------------------
r = await call('token create', 'POST', '/admin/tokens', { token: admin, body: { scopes: ['read'], households: [household], expires_in: '1h', name: 'validation' } });
expect('token create', r.status, 201);
const tokenId = r.status === 201 ? r.json().id : uuid0;
expect('token list', (await call('tokens', 'GET', '/admin/tokens', { token: admin })).status, 200);
expect('token invalid', (await call('tokens', 'POST', '/admin/tokens', { token: admin, body: { scopes: ['root'] } })).status, 400);
expect('token revoke', (await call('token', 'DELETE', '/admin/tokens/' + tokenId, { token: admin })).status, 204);
expect('token revoke again', (await call('token', 'DELETE', '/admin/tokens/' + tokenId, { token: admin })).status, 204);
expect('token unknown', (await call('token', 'DELETE', '/admin/tokens/' + uuid0, { token: admin })).status, 404);
expect('token bad id', (await call('token', 'DELETE', '/admin/tokens/nope', { token: admin })).status, 400);

// --- protocol-level errors ---------------------------------------------------------------------
expect('wrong method', (await call('405', 'DELETE', '/analytics/households/' + household + '/energy', { token: admin })).status, 405);
expect('wrong method open', (await call('405', 'POST', '/healthz', { token: admin })).status, 405);
expect('no such path', (await call('404', 'GET', '/nope', { token: admin })).status, 404);
expect('no such path no token', (await call('401', 'GET', '/nope')).status, 401);
expect('body too large', await raw('413', 'POST', '/telemetry', `Authorization: Bearer ${ingest}\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n`), 413);
expect('head too large', await raw('431', 'GET', '/healthz', `X-Big: ${'x'.repeat(20000)}\r\n`), 431);
// Failed authentications from one address are limited (auth.failure_burst): the next is 429.
let limited = 0;
for (let i = 0; i < 200 && !limited; i++) {
  const res = await call('429', 'GET', '/admin/status', { token: 'jl_' + String(i).padStart(43, 'y') });
  if (res.status === 429)
    limited = 1;
}
if (!limited)
  failures.push('429: 200 failed authentications were never rate limited');

// --- coverage ----------------------------------------------------------------------------------
for (const [path, item] of Object.entries(spec.paths))
  for (const m of Object.keys(item).filter((k) => k !== 'parameters'))
    if (!covered.has(m.toUpperCase() + ' ' + path))
      failures.push(`no validated 2xx answer for ${m.toUpperCase()} ${path}`);
for (const s of [400, 401, 403, 404, 405, 413, 422, 429, 431])
  if (!statusesSeen.has(s))
    failures.push(`status ${s} was never produced, so its schema was never checked`);

const ops = Object.values(spec.paths).reduce((n, i) => n + Object.keys(i).filter((k) => k !== 'parameters').length, 0);
console.log(`validated ${validated} answers against http/openapi.json, ${covered.size}/${ops} operations with a 2xx answer, statuses ${[...statusesSeen].sort().join(' ')}`);
if (failures.length) {
  for (const f of failures)
    console.error('FAIL ' + f);

  process.exit(1);
}
console.log("all answers match their schemas");
