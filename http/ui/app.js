// Joule's built-in dashboard: plain JavaScript and uPlot, no framework, no build step.
// It talks only to this server's public API with `Authorization: Bearer <token>`; the token is
// typed once and kept in sessionStorage (this tab only). The URL fragment may preselect a
// household, a device and the view: /ui/#household=UUID&device=UUID&view=operator.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'joule.token';
  const HOUSEHOLD_KEY = 'joule.household';
  const REFRESH_MS = 30000;

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    household: '',
    device: '',
    step: '5m',
    view: 'household',
    timer: null,
    generation: 0,  // answers of superseded loads are dropped
  };
  // Read by the browser test (tests/web/dashboard.test.mjs): what each chart shows and from
  // which API call, so it can compare the points with the API's own answer.
  const charts = { energy: null, power: null };
  window.jouleDashboard = { charts };

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path) {
    const res = await fetch(path, {
      headers: { Authorization: 'Bearer ' + state.token },
      cache: 'no-store',
    });
    const type = res.headers.get('Content-Type') || '';
    const body = type.startsWith('application/json') ? await res.json().catch(() => null)
                                                      : await res.text();
    if (!res.ok) {
      const err = body && body.error ? body.error : {};
      throw new ApiError(res.status, err.code || 'http_' + res.status,
                         err.message || res.statusText || 'request failed');
    }
    return body;
  }

  // --- messages and token ---------------------------------------------------------------------

  function showMessage(text, kind) {
    const m = $('message');
    m.textContent = text;
    m.className = kind || '';
    m.hidden = !text;
  }

  function explain(e, what) {
    if (!(e instanceof ApiError))
      return what + ' failed: ' + e.message;
    if (e.status === 401)
      return 'The token was rejected (401 unauthorized): it is wrong, expired or revoked. ' +
             'Enter a valid token.';
    if (e.status === 403)
      return what + ': this token may not do that (403 ' + e.code + '). ' + e.message;
    if (e.status === 429)
      return what + ': rate limited (429); retrying on the next refresh.';
    return what + ' failed (' + e.status + ' ' + e.code + '): ' + e.message;
  }

  // A rejected token stops everything and asks for another one.
  function handleError(e, what) {
    showMessage(explain(e, what));
    if (e instanceof ApiError && e.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      state.token = '';
      stopTimer();
      showTokenForm();
      return true;
    }
    return false;
  }

  function showTokenForm() {
    $('token-form').hidden = false;
    $('forget-token').hidden = true;
    $('household').hidden = true;
    $('operator').hidden = true;
    $('token-input').focus();
  }

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token-input').value.trim();
    if (!t)
      return;
    state.token = t;
    sessionStorage.setItem(TOKEN_KEY, t);
    $('token-input').value = '';
    showMessage('');
    start();
  });

  $('forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = '';
    stopTimer();
    showMessage('Token forgotten.', 'info');
    showTokenForm();
  });

  // --- formatting -------------------------------------------------------------------------------

  const timeFmt = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const fmtTime = (iso) => (iso ? timeFmt.format(new Date(iso)) : '—');
  function fmtEnergy(wh) {
    return Math.abs(wh) >= 1000 ? (wh / 1000).toFixed(2) + ' kWh' : wh.toFixed(1) + ' Wh';
  }
  function fmtSeconds(s) {
    if (s === undefined || s === null || Number.isNaN(s))
      return '—';
    if (s < 1)
      return (s * 1000).toFixed(0) + ' ms';
    if (s < 120)
      return s.toFixed(1) + ' s';
    if (s < 7200)
      return (s / 60).toFixed(1) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }
  const fmtNumber = (v) => (v === undefined || v === null ? '—'
                                                          : Number(v).toLocaleString());

  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls)
      td.className = cls;
    row.appendChild(td);
    return td;
  }

  function clear(tbody) {
    while (tbody.firstChild)
      tbody.removeChild(tbody.firstChild);
  }

  function emptyRow(tbody, cols, text) {
    const tr = document.createElement('tr');
    const td = cell(tr, text, 'empty');
    td.colSpan = cols;
    tbody.appendChild(tr);
  }

  // --- charts -----------------------------------------------------------------------------------

  function chartWidth(el) {
    return Math.max(320, el.clientWidth || el.parentElement.clientWidth - 32);
  }

  // Draws (or redraws) a chart; `series` are uPlot series options after the x axis.
  function draw(name, el, data, series, yLabel, fromZero) {
    if (charts[name])
      charts[name].destroy();
    const y = fromZero ? { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.08 : 1] }
                       : {};
    const opts = {
      width: chartWidth(el),
      height: 260,
      scales: { x: { time: true }, y },
      axes: [{}, { label: yLabel, size: 70 }],
      series: [{}].concat(series),
      legend: { live: true },
    };
    charts[name] = new uPlot(opts, data, el);
    return charts[name];
  }

  window.addEventListener('resize', () => {
    for (const name of Object.keys(charts)) {
      const c = charts[name];
      if (c)
        c.setSize({ width: chartWidth(c.root.parentElement), height: 260 });
    }
  });

  // --- household view --------------------------------------------------------------------------

  function rangeBounds() {
    const choice = $('range').value;
    if (choice === 'custom') {
      const s = $('range-start').value, e = $('range-end').value;
      if (!s || !e)
        return null;
      return { start: new Date(s), end: new Date(e) };
    }
    const hours = parseInt(choice, 10);
    const end = new Date();
    return { start: new Date(end.getTime() - hours * 3600e3), end };
  }

  // The power chart uses the finest step that keeps the point count reasonable.
  function powerStep(b) {
    const hours = (b.end - b.start) / 3600e3;
    return hours <= 24 ? '1m' : hours <= 72 ? '5m' : '1h';
  }

  function setFreshness(iso) {
    const badge = $('freshness');
    if (!iso) {
      badge.hidden = true;
      return;
    }
    const age = (Date.now() - new Date(iso).getTime()) / 1000;
    badge.textContent = 'fresh as of ' + fmtTime(iso) + ' (' + fmtSeconds(Math.max(0, age)) +
                        ' ago)';
    badge.className = 'badge ' + (age <= 60 ? 'fresh' : age <= 600 ? 'stale' : 'old');
    badge.dataset.freshAsOf = iso;
    badge.hidden = false;
  }

  function query(params) {
    return Object.keys(params).map((k) => k + '=' + encodeURIComponent(params[k])).join('&');
  }

  async function loadEnergy(gen, b) {
    const url = '/analytics/households/' + encodeURIComponent(state.household) + '/energy?' +
                query({ step: state.step, start: b.start.toISOString(), end: b.end.toISOString() });
    const r = await api(url);
    if (gen !== state.generation)
      return;
    const xs = r.series.map((p) => Date.parse(p.t) / 1000);
    const vs = r.series.map((p) => p.v);
    const el = $('energy-chart');
    $('energy-empty').hidden = r.series.length > 0;
    $('energy-caption').textContent = r.step + ' buckets, ' + fmtTime(r.start) + ' – ' +
                                      fmtTime(r.end) + ', ' + r.series.length + ' points';
    const u = draw('energy', el, [xs, vs], [{
      label: 'energy (Wh)', stroke: '#2563eb', fill: 'rgba(37,99,235,0.25)',
      paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false },
    }], 'Wh per bucket', true);
    el.dataset.src = url;
    el.dataset.step = r.step;
    el.dataset.points = String(r.series.length);
    setFreshness(r.fresh_as_of);
    return u;
  }

  async function loadTop(gen) {
    const r = await api('/analytics/households/' + encodeURIComponent(state.household) +
                        '/top-devices?limit=10');
    if (gen !== state.generation)
      return;
    const tbody = $('top-devices').tBodies[0];
    clear(tbody);
    if (!r.devices.length)
      emptyRow(tbody, 2, 'No readings in the last 24 hours.');
    for (const d of r.devices) {
      const tr = document.createElement('tr');
      tr.dataset.deviceId = d.device_id;
      tr.dataset.energyWh = String(d.energy_wh);
      tr.tabIndex = 0;
      if (d.device_id === state.device)
        tr.className = 'selected';
      cell(tr, d.device_id, 'mono');
      cell(tr, fmtEnergy(d.energy_wh), 'num');
      tr.addEventListener('click', () => selectDevice(d.device_id));
      tr.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter')
          selectDevice(d.device_id);
      });
      tbody.appendChild(tr);
    }
    if (!state.device && r.devices.length)
      selectDevice(r.devices[0].device_id, true);
  }

  async function loadPower(gen, b) {
    const step = powerStep(b);
    const url = '/analytics/devices/' + encodeURIComponent(state.device) + '/power?' +
                query({ step, start: b.start.toISOString(), end: b.end.toISOString() });
    const r = await api(url);
    if (gen !== state.generation)
      return;
    const el = $('power-chart');
    $('power-empty').hidden = r.series.length > 0;
    $('power-caption').textContent = 'power, ' + r.step + ' buckets';
    draw('power', el, [
      r.series.map((p) => Date.parse(p.t) / 1000),
      r.series.map((p) => p.avg),
      r.series.map((p) => p.max),
    ], [
      { label: 'average (W)', stroke: '#2563eb', width: 1.5 },
      { label: 'maximum (W)', stroke: '#dc2626', width: 1, dash: [4, 3] },
    ], 'W');
    el.dataset.src = url;
    el.dataset.step = r.step;
  }

  function ruleCondition(r) {
    return r.op + ' ' + r.value + (r.recover_value === null ? '' : ' (recovers past ' +
                                                                   r.recover_value + ')');
  }

  async function loadAlerts(gen) {
    const note = $('alerts-note');
    const rulesBody = $('rules').tBodies[0], eventsBody = $('events').tBodies[0];
    let rules, events;
    try {
      [rules, events] = await Promise.all([api('/alerts/rules'),
                                           api('/alerts/events?limit=200')]);
    } catch (e) {
      if (gen !== state.generation)
        return;
      clear(rulesBody);
      clear(eventsBody);
      if (e instanceof ApiError && e.status === 403) {
        note.textContent = 'This token has no alerts scope: rules and events are not shown.';
        note.hidden = false;
        return;
      }
      throw e;
    }
    if (gen !== state.generation)
      return;
    note.hidden = true;
    const mine = rules.rules.filter((r) =>
        (r.scope === 'device' && r.scope_id === state.device) ||
        (r.scope === 'household' && r.scope_id === state.household));
    clear(rulesBody);
    if (!mine.length)
      emptyRow(rulesBody, 5, 'No rules on this device or its household.');
    for (const r of mine) {
      const tr = document.createElement('tr');
      tr.dataset.ruleId = r.id;
      cell(tr, r.metric, 'mono');
      cell(tr, ruleCondition(r), 'mono');
      cell(tr, r.window);
      cell(tr, r.scope);
      cell(tr, r.enabled ? 'yes' : 'no');
      rulesBody.appendChild(tr);
    }
    const ids = new Set(mine.map((r) => r.id));
    const recent = events.events.filter((e) => ids.has(e.rule_id)).slice(0, 20);
    clear(eventsBody);
    if (!recent.length)
      emptyRow(eventsBody, 5, 'No events.');
    for (const e of recent) {
      const tr = document.createElement('tr');
      tr.dataset.alertId = e.alert_id;
      cell(tr, fmtTime(e.created_at));
      cell(tr, e.status, e.status);
      cell(tr, fmtNumber(e.observed), 'num');
      cell(tr, fmtTime(e.bucket));
      cell(tr, e.delivery.status + (e.delivery.last_error ? ' (' + e.delivery.last_error + ')'
                                                           : ''));
      eventsBody.appendChild(tr);
    }
  }

  function selectDevice(id, quiet) {
    state.device = id;
    for (const tr of $('top-devices').tBodies[0].rows)
      tr.classList.toggle('selected', tr.dataset.deviceId === id);
    writeFragment();
    if (!quiet)
      loadDevice(state.generation);
  }

  async function loadDevice(gen) {
    const b = rangeBounds();
    if (!state.device || !b)
      return;
    $('device').hidden = false;
    $('device-id').textContent = state.device;
    try {
      await Promise.all([loadPower(gen, b), loadAlerts(gen)]);
    } catch (e) {
      handleError(e, 'Loading the device');
    }
  }

  async function loadHousehold() {
    const gen = ++state.generation;
    const b = rangeBounds();
    if (!state.household) {
      showMessage('Enter a household id to show its energy.', 'info');
      return;
    }
    if (!b) {
      showMessage('Choose a start and an end for the custom range.', 'info');
      return;
    }
    if (b.start >= b.end) {
      showMessage('The range must start before it ends.');
      return;
    }
    try {
      await Promise.all([loadEnergy(gen, b), loadTop(gen)]);
      if (gen !== state.generation)
        return;
      showMessage('');
      await loadDevice(gen);
    } catch (e) {
      if (gen === state.generation)
        handleError(e, 'Loading the household');
    }
  }

  function setStep(step) {
    state.step = step;
    for (const s of ['5m', '1h'])
      $('step-' + s).setAttribute('aria-pressed', String(s === step));
    loadHousehold();
  }

  $('step-5m').addEventListener('click', () => setStep('5m'));
  $('step-1h').addEventListener('click', () => setStep('1h'));
  $('range').addEventListener('change', () => {
    $('custom-range').hidden = $('range').value !== 'custom';
    if ($('range').value !== 'custom')
      loadHousehold();
  });
  $('household-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const h = $('household-input').value.trim().toLowerCase();
    if (h !== state.household) {
      state.device = '';
      $('device').hidden = true;
    }
    state.household = h;
    sessionStorage.setItem(HOUSEHOLD_KEY, h);
    writeFragment();
    loadHousehold();
  });

  // --- operator view ----------------------------------------------------------------------------

  // Prometheus text format: name{labels} value. Returns [{name, labels, value}].
  function parseMetrics(text) {
    const out = [];
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#')
        continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m)
        continue;
      const labels = {};
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3] || '')) !== null)
        labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
      out.push({ name: m[1], labels, value: Number(m[4]) });
    }
    return out;
  }

  function pick(metrics, name, labels) {
    return metrics.filter((s) => s.name === name && Object.keys(labels || {}).every(
        (k) => s.labels[k] === labels[k]));
  }
  const total = (samples) => samples.reduce((a, s) => a + s.value, 0);
  // The one label that tells series of a metric apart (rollup, actor, outcome ...).
  function keyLabel(s) {
    const keys = Object.keys(s.labels).filter((k) => k !== 'le');
    return keys.length ? s.labels[keys[0]] : '';
  }

  // Rollup lag from /metrics; the last refresh from each refresh actor's status
  // (refresh.<rollup>.last_duration_ms), the mean from the duration histogram.
  function renderRollups(metrics, status) {
    const tbody = $('op-rollups').tBodies[0];
    clear(tbody);
    const names = new Set(pick(metrics, 'joule_rollup_lag_seconds').map(keyLabel));
    for (const k of Object.keys(status))
      if (k.startsWith('refresh.'))
        names.add(k.slice('refresh.'.length));
    const byRollup = (name, rollup) =>
        metrics.filter((s) => s.name === name && keyLabel(s) === rollup);
    for (const rollup of [...names].filter(Boolean).sort()) {
      const st = status['refresh.' + rollup] || {};
      const tr = document.createElement('tr');
      tr.dataset.rollup = rollup;
      const sum = total(byRollup('joule_rollup_refresh_duration_seconds_sum', rollup));
      const count = total(byRollup('joule_rollup_refresh_duration_seconds_count', rollup));
      const lag = byRollup('joule_rollup_lag_seconds', rollup);
      cell(tr, rollup, 'mono');
      cell(tr, lag.length ? fmtSeconds(total(lag)) : '—', 'num');
      cell(tr, typeof st.last_duration_ms === 'number' ? fmtSeconds(st.last_duration_ms / 1000)
                                                       : '—', 'num');
      cell(tr, count ? fmtSeconds(sum / count) : '—', 'num');
      cell(tr, fmtNumber(st.cycles !== undefined ? st.cycles : count), 'num');
      cell(tr, fmtNumber(st.invalidations_pending !== undefined
                             ? st.invalidations_pending
                             : total(byRollup('joule_rollup_invalidations_pending', rollup))),
           'num');
      tbody.appendChild(tr);
    }
    if (!tbody.rows.length)
      emptyRow(tbody, 6, 'No rollup figures yet.');
  }

  function renderFigures(metrics, status) {
    const tbody = $('op-figures').tBodies[0];
    clear(tbody);
    const row = (label, value) => {
      const tr = document.createElement('tr');
      tr.dataset.figure = label;
      const th = document.createElement('th');
      th.textContent = label;
      tr.appendChild(th);
      cell(tr, value, 'num');
      tbody.appendChild(tr);
    };
    const pool = status.db_pool || {};
    row('DB pool workers (busy / all)', fmtNumber(pool.busy) + ' / ' + fmtNumber(pool.workers));
    row('DB pool queued jobs', fmtNumber(pool.queued));
    row('DB pool timeouts / rejected', fmtNumber(pool.timeouts) + ' / ' + fmtNumber(pool.rejected));
    row('DB reconnects', fmtNumber(total(pick(metrics, 'joule_db_reconnects_total'))));
    const cache = status.cache || {};
    row('cache', cache.enabled === false ? 'disabled' : 'breaker ' + (cache.breaker || '—'));
    const outcomes = pick(metrics, 'joule_cache_requests_total');
    const reads = total(outcomes);
    for (const s of outcomes)
      row('cache ' + keyLabel(s), fmtNumber(s.value) +
          (reads ? ' (' + (100 * s.value / reads).toFixed(0) + ' %)' : ''));
    row('Redis errors', fmtNumber(total(pick(metrics, 'joule_cache_redis_errors_total'))));
    const notifier = status['alerts.notifier'] || {};
    const depth = pick(metrics, 'joule_alert_outbox_depth');
    row('alert outbox depth', fmtNumber(notifier.outbox_depth !== undefined
                                            ? notifier.outbox_depth : total(depth)));
    const oldest = pick(metrics, 'joule_alert_outbox_oldest_due_seconds');
    row('oldest due notification', oldest.length ? fmtSeconds(total(oldest)) : '—');
    row('HTTP sessions', fmtNumber(total(pick(metrics, 'joule_http_sessions'))));
  }

  // Restarts per supervised actor (supervisor status), plus any counted by the metric alone
  // (DB workers restarted by their pool).
  function renderRestarts(metrics, status) {
    const tbody = $('op-restarts').tBodies[0];
    clear(tbody);
    const rows = new Map();
    const sup = status.supervisor || {};
    for (const name of Object.keys(sup))
      if (sup[name] && typeof sup[name].restarts === 'number')
        rows.set(name, { restarts: sup[name].restarts, running: sup[name].running });
    for (const s of pick(metrics, 'joule_actor_restarts_total'))
      if (!rows.has(keyLabel(s)))
        rows.set(keyLabel(s), { restarts: s.value });
    if (!rows.size)
      emptyRow(tbody, 2, 'No supervised actors reported.');
    for (const [name, r] of [...rows].sort()) {
      const tr = document.createElement('tr');
      cell(tr, name + (r.running === false ? ' (down)' : ''), 'mono');
      cell(tr, fmtNumber(r.restarts), 'num');
      tbody.appendChild(tr);
    }
  }

  // /admin/status: one object per actor; nested values are shown flattened (a.b: value).
  function renderStatus(status) {
    const box = $('op-status');
    while (box.firstChild)
      box.removeChild(box.firstChild);
    for (const name of Object.keys(status).sort()) {
      const block = document.createElement('div');
      block.className = 'status-block';
      const h = document.createElement('h3');
      h.textContent = name;
      block.appendChild(h);
      const table = document.createElement('table');
      table.className = 'kv';
      const tbody = document.createElement('tbody');
      const add = (key, v) => {
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
          for (const k of Object.keys(v))
            add(key ? key + '.' + k : k, v[k]);
          return;
        }
        const tr = document.createElement('tr');
        const th = document.createElement('th');
        th.textContent = key || '(value)';
        tr.appendChild(th);
        cell(tr, Array.isArray(v) ? JSON.stringify(v) : String(v), 'num');
        tbody.appendChild(tr);
      };
      add('', status[name] === null ? 'no answer' : status[name]);
      table.appendChild(tbody);
      block.appendChild(table);
      box.appendChild(block);
    }
  }

  async function loadOperator() {
    const gen = ++state.generation;
    try {
      const [status, text] = await Promise.all([api('/admin/status'), api('/metrics')]);
      if (gen !== state.generation)
        return;
      const metrics = parseMetrics(text);
      renderRollups(metrics, status);
      renderFigures(metrics, status);
      renderRestarts(metrics, status);
      renderStatus(status);
      $('operator-updated').textContent = 'updated ' + fmtTime(new Date().toISOString());
      showMessage('');
    } catch (e) {
      if (gen !== state.generation)
        return;
      if (e instanceof ApiError && e.status === 403)
        showMessage('The operator view needs a token with the admin scope (403 forbidden).');
      else
        handleError(e, 'Loading the operator view');
    }
  }

  $('operator-refresh').addEventListener('click', loadOperator);

  // --- views, fragment, refresh -----------------------------------------------------------------

  function writeFragment() {
    const parts = [];
    if (state.household)
      parts.push('household=' + encodeURIComponent(state.household));
    if (state.device)
      parts.push('device=' + encodeURIComponent(state.device));
    if (state.view !== 'household')
      parts.push('view=' + state.view);
    history.replaceState(null, '', '#' + parts.join('&'));
  }

  function readFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    state.household = (params.get('household') || sessionStorage.getItem(HOUSEHOLD_KEY) ||
                       '').toLowerCase();
    state.device = (params.get('device') || '').toLowerCase();
    state.view = params.get('view') === 'operator' ? 'operator' : 'household';
  }

  function stopTimer() {
    if (state.timer)
      clearInterval(state.timer);
    state.timer = null;
  }

  function refresh() {
    if (!state.token)
      return;
    if (state.view === 'operator')
      loadOperator();
    else
      loadHousehold();
  }

  function showView(view) {
    state.view = view;
    $('view-household').setAttribute('aria-pressed', String(view === 'household'));
    $('view-operator').setAttribute('aria-pressed', String(view === 'operator'));
    if (!state.token)
      return;
    $('household').hidden = view !== 'household';
    $('operator').hidden = view !== 'operator';
    writeFragment();
    showMessage('');
    refresh();
  }

  $('view-household').addEventListener('click', () => showView('household'));
  $('view-operator').addEventListener('click', () => showView('operator'));

  function start() {
    $('token-form').hidden = true;
    $('forget-token').hidden = false;
    $('household-input').value = state.household;
    stopTimer();
    state.timer = setInterval(refresh, REFRESH_MS);
    showView(state.view);
  }

  readFragment();
  $('household-input').value = state.household;
  if (state.token) {
    start();
  } else {
    showMessage('Enter an API token to use the dashboard.', 'info');
    showTokenForm();
  }
})();
