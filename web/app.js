/*
 * Rushes dashboard: a static single page over the REST API (docs/API.md).
 * No build step, no dependencies. Hash routes: #/ (queue), #/jobs,
 * #/job/ID (DAG neighbours, tasks, loss curve, contact sheet, ledger
 * events, log), #/workers, #/schedules. It polls the API (default every 2 s;
 * ?poll=MS to change) with the bearer token kept in localStorage (enter it
 * in the header, or open /ui/?token=rsh_... once). Operator actions (cancel,
 * retry, priority, drain) are plain API calls; the server decides what the
 * token's role may do and the page shows its refusal.
 */
'use strict';

const params = new URLSearchParams(location.search);
if (params.get('token')) {
  localStorage.setItem('rushesToken', params.get('token'));
  params.delete('token');
  history.replaceState(null, '', location.pathname + (params.toString() ? '?' + params : '') + location.hash);
}
const POLL_MS = Math.max(250, Number(params.get('poll')) || 2000);
const STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const $ = (sel, root = document) => root.querySelector(sel);
let timer = null;
let busy = false;
let again = false; // a refresh asked for while one was running (e.g. a click during a poll)
// The last operator action's refusal stays on screen across refreshes until
// the next action succeeds.
let actionError = '';

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

async function api(method, path, body) {
  const headers = { 'Accept': 'application/json' };
  const tok = localStorage.getItem('rushesToken');
  if (tok) headers['Authorization'] = 'Bearer ' + tok;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body !== undefined ? JSON.stringify(body) : undefined });
  let doc = null;
  try { doc = await res.json(); } catch (e) { doc = null; }
  if (!res.ok) {
    const msg = doc && doc.error ? doc.error.message : res.statusText;
    const err = new Error(res.status + ' ' + msg);
    err.status = res.status;
    throw err;
  }
  return doc;
}

function setStatus(msg) { $('#status').textContent = msg || ''; }

function ago(iso) {
  if (!iso) return '-';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return s.toFixed(0) + ' s ago';
  if (s < 3600) return (s / 60).toFixed(0) + ' min ago';
  return (s / 3600).toFixed(1) + ' h ago';
}

function ms(n) {
  if (n == null) return '-';
  return n < 1000 ? n.toFixed(0) + ' ms' : (n / 1000).toFixed(1) + ' s';
}

function stateCell(s) { return `<span class="state state-${esc(s)}">${esc(s)}</span>`; }

function bar(p) {
  const pct = Math.round(Math.max(0, Math.min(1, p || 0)) * 100);
  return `<span class="bar" title="${pct}%"><span style="width:${pct}%"></span></span> <span class="pct">${pct}%</span>`;
}

/* ---- views ---------------------------------------------------------------- */

async function viewOverview(v) {
  const [health, projects, workers] = await Promise.all([
    api('GET', '/healthz'), api('GET', '/api/v1/projects'), api('GET', '/api/v1/workers')]);
  // /healthz counts every tenant; with a tenant token sum its own projects.
  const counts = Object.fromEntries(STATES.map(s => [s, 0]));
  for (const p of projects.projects) for (const s of STATES) counts[s] += p.jobs[s] || 0;
  const up = workers.workers.filter(w => w.state === 'up');
  let oldest = null;
  for (const p of projects.projects) if (p.oldest_queued_at && (!oldest || p.oldest_queued_at < oldest)) oldest = p.oldest_queued_at;
  v.innerHTML = `
    <h2>Queue</h2>
    <div class="cards">
      ${STATES.map(s => `<div class="card"><div class="n" id="count-${s}">${counts[s]}</div><div class="l">${s}</div></div>`).join('')}
      <div class="card"><div class="n" id="count-workers">${up.length}</div><div class="l">workers up</div></div>
      <div class="card"><div class="n" id="oldest-waiting">${oldest ? esc(ago(oldest)) : '-'}</div><div class="l">oldest waiting</div></div>
    </div>
    <h2>Projects</h2>
    <table id="projects"><thead><tr><th>Project</th>${STATES.map(s => `<th>${s}</th>`).join('')}<th>Running tasks</th><th>Limit</th><th>Oldest waiting</th></tr></thead>
    <tbody>${projects.projects.map(p => `<tr data-project="${esc(p.name)}"><td><a href="#/jobs?project=${encodeURIComponent(p.name)}">${esc(p.name)}</a></td>
      ${STATES.map(s => `<td class="num">${p.jobs[s]}</td>`).join('')}
      <td class="num">${p.running_tasks}</td><td class="num">${p.max_running || '-'}</td><td>${esc(ago(p.oldest_queued_at))}</td></tr>`).join('')}
    </tbody></table>
    <p class="dim">Schema ${esc(health.schema)}, rushesd ${esc(health.version)}</p>`;
}

async function viewJobs(v, query) {
  const q = new URLSearchParams(query);
  const path = '/api/v1/jobs?limit=200' + (q.get('project') ? '&project=' + encodeURIComponent(q.get('project')) : '') +
    (q.get('state') ? '&state=' + encodeURIComponent(q.get('state')) : '');
  const doc = await api('GET', path);
  v.innerHTML = `
    <h2>Jobs ${q.get('project') ? 'in ' + esc(q.get('project')) : ''}</h2>
    <table id="jobs"><thead><tr><th>ID</th><th>Project</th><th>Kind</th><th>State</th><th>Priority</th>
      <th>Progress</th><th>Tasks</th><th>Window</th><th>Created</th><th>Actions</th></tr></thead>
    <tbody>${doc.jobs.map(j => `<tr data-job-id="${j.id}">
      <td><a href="#/job/${j.id}">${j.id}</a></td><td>${esc(j.project)}</td><td>${esc(j.kind)}</td>
      <td class="job-state">${stateCell(j.state)}</td>
      <td><input class="prio" type="number" min="-100" max="100" value="${j.priority}" data-action="priority" data-id="${j.id}"
        ${j.state === 'queued' || j.state === 'running' ? '' : 'disabled'}></td>
      <td>${bar(j.progress)}</td><td class="num">${j.tasks_done}/${j.tasks_total}</td>
      <td class="job-window">${windowCell(j.window)}</td><td>${esc(ago(j.created_at))}</td>
      <td>${j.state === 'queued' || j.state === 'running' ? `<button class="danger" data-action="cancel" data-id="${j.id}">Cancel</button>` : ''}
          ${j.state === 'failed' || j.state === 'cancelled' ? `<button data-action="retry" data-id="${j.id}">Retry</button>` : ''}</td>
    </tr>`).join('')}</tbody></table>`;
}

// A job's contact sheet does not change once written: fetch it once (with
// the bearer header, which an <img src> cannot send) and keep its blob URL.
const sheets = new Map();

async function contactSheetUrl(id) {
  if (sheets.has(id)) return sheets.get(id);
  const headers = {};
  const tok = localStorage.getItem('rushesToken');
  if (tok) headers['Authorization'] = 'Bearer ' + tok;
  const res = await fetch(`/api/v1/jobs/${id}/contact-sheet`, { headers });
  if (!res.ok) return null;
  const url = URL.createObjectURL(await res.blob());
  sheets.set(id, url);
  return url;
}

function windowText(w) {
  if (!w) return '-';
  const d = w.duration_min % 60 === 0 ? (w.duration_min / 60) + ' h' : w.duration_min + ' min';
  return `${w.cron} for ${d} (${w.tz})`;
}

function windowCell(w) {
  if (!w) return '-';
  return `<span class="window ${w.open ? 'open' : 'shut'}" title="${esc(windowText(w))}">` +
    `<code>${esc(w.cron)}</code> ${esc(windowText(w).split(' for ')[1])} · ${w.open ? 'open' : 'shut'}</span>`;
}

const STATE_COLOURS = { queued: '#f0b429', running: '#4da3ff', succeeded: '#3fbf7f', failed: '#ff5c5c', cancelled: '#9aa1ad' };

// Parents in the left column, the job in the middle, children on the right;
// each node links to its job page.
function dagSvg(graph) {
  const cols = { parent: [], self: [], child: [] };
  for (const n of graph.nodes) cols[n.role].push(n);
  const W = 190, H = 44, GX = 90, GY = 16;
  const rows = Math.max(1, cols.parent.length, cols.child.length);
  const height = rows * (H + GY) + GY;
  const width = 3 * W + 2 * GX + 20;
  const pos = new Map();
  ['parent', 'self', 'child'].forEach((role, c) => {
    const list = cols[role];
    const top = (height - list.length * (H + GY) + GY) / 2;
    list.forEach((n, i) => pos.set(n.id, { x: 10 + c * (W + GX), y: top + i * (H + GY) }));
  });
  const edges = graph.edges.filter(e => pos.has(e.from) && pos.has(e.to)).map(e => {
    const a = pos.get(e.from), b = pos.get(e.to);
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    return `<path class="dag-edge" data-from="${e.from}" data-to="${e.to}" d="M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}" marker-end="url(#arrow)"/>`;
  }).join('');
  const nodes = graph.nodes.map(n => {
    const p = pos.get(n.id);
    const colour = STATE_COLOURS[n.state] || '#9aa1ad';
    return `<a href="#/job/${n.id}"><g class="dag-node ${n.role === 'self' ? 'self' : ''}" data-job-id="${n.id}" data-state="${esc(n.state)}" data-role="${esc(n.role)}">
      <rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="5" fill="${colour}" fill-opacity="0.18" stroke="${colour}" stroke-width="${n.role === 'self' ? 3 : 1.5}"/>
      <text x="${p.x + 10}" y="${p.y + 18}" class="dag-title">#${n.id} ${esc(n.kind)}</text>
      <text x="${p.x + 10}" y="${p.y + 35}" class="dag-sub" fill="${colour}">${esc(n.state)} · ${Math.round(n.progress * 100)}%</text>
    </g></a>`;
  }).join('');
  return `<svg id="dag" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="job dependencies">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
      <path d="M0,0 L10,5 L0,10 z" fill="#9aa1ad"/></marker></defs>${edges}${nodes}</svg>`;
}

// One polyline per attempt (a resumed or retried attempt starts a new line);
// axes from the points' own ranges.
function lossSvg(points) {
  const W = 640, H = 220, L = 56, R = 12, T = 12, B = 28;
  const xs = points.map(p => p.step), ys = points.map(p => p.loss);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = x => L + (W - L - R) * (x - x0) / Math.max(1, x1 - x0);
  const sy = y => H - B - (H - T - B) * (y - y0) / Math.max(1e-12, y1 - y0);
  const series = new Map();
  for (const p of points) {
    const k = p.task + ':' + p.attempt;
    if (!series.has(k)) series.set(k, []);
    series.get(k).push(p);
  }
  const palette = ['#4da3ff', '#3fbf7f', '#f0b429', '#c792ea', '#ff5c5c'];
  const lines = [...series.entries()].map(([k, ps], i) =>
    `<polyline class="loss-line" data-series="${esc(k)}" data-n="${ps.length}" fill="none" stroke="${palette[i % palette.length]}" stroke-width="1.5"
      points="${ps.map(p => sx(p.step).toFixed(1) + ',' + sy(p.loss).toFixed(1)).join(' ')}"/>`).join('');
  const fmt = v => Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : v.toPrecision(3);
  return `<svg id="loss" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" data-points="${points.length}"
      data-last-loss="${points[points.length - 1].loss}" data-max-step="${x1}" role="img" aria-label="training loss">
    <line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}"/><line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/>
    <text class="tick" x="${L - 6}" y="${T + 8}" text-anchor="end">${fmt(y1)}</text>
    <text class="tick" x="${L - 6}" y="${H - B}" text-anchor="end">${fmt(y0)}</text>
    <text class="tick" x="${L}" y="${H - 8}">step ${x0}</text>
    <text class="tick" x="${W - R}" y="${H - 8}" text-anchor="end">step ${x1}</text>${lines}</svg>`;
}

function eventSummary(p) {
  if (!p || typeof p !== 'object') return esc(JSON.stringify(p));
  const skip = new Set(['type', 't', 'job', 'project']);
  return Object.entries(p).filter(([k]) => !skip.has(k)).map(([k, v]) =>
    `${esc(k)}=${esc(typeof v === 'object' ? JSON.stringify(v).slice(0, 80) : v)}`).join(' ');
}

async function viewJob(v, id) {
  const [doc, log, graph, loss] = await Promise.all([api('GET', `/api/v1/jobs/${id}`),
    api('GET', `/api/v1/jobs/${id}/log?limit=200`), api('GET', `/api/v1/jobs/${id}/graph`),
    api('GET', `/api/v1/jobs/${id}/loss`)]);
  const j = doc.job;
  // Ledger events are per project (audit role); keep this job's.
  let events = null, ledgerNote = 'No ledger events recorded for this job.';
  try {
    const l = await api('GET', `/api/v1/ledger/events?project=${encodeURIComponent(j.project)}`);
    events = l.events.filter(e => e.payload && Number(e.payload.job) === Number(id));
  } catch (e) {
    ledgerNote = e.status === 403 ? 'This token may not read the ledger (audit role needed).' : 'Ledger unavailable: ' + e.message;
  }
  const sheet = j.result && j.result.contact_sheet ? await contactSheetUrl(id) : null;
  const points = loss.points || [];
  v.innerHTML = `
    <h2>Job ${j.id}: ${esc(j.kind)} in ${esc(j.project)}</h2>
    <dl class="kv">
      <dt>State</dt><dd id="job-state">${stateCell(j.state)}</dd>
      <dt>Progress</dt><dd>${bar(j.progress)} ${j.tasks_done}/${j.tasks_total} tasks</dd>
      <dt>Priority</dt><dd>${j.priority}</dd>
      <dt>Window</dt><dd id="job-window">${j.window ? `${esc(windowText(j.window))}, ${j.window.open ? 'open now' : 'shut now'}` : '-'}</dd>
      <dt>Depends on</dt><dd>${j.depends_on.map(d => `<a href="#/job/${d}">${d}</a>`).join(', ') || '-'}</dd>
      <dt>Created</dt><dd>${esc(j.created_at)}</dd><dt>Started</dt><dd>${esc(j.started_at || '-')}</dd>
      <dt>Finished</dt><dd>${esc(j.finished_at || '-')}</dd>
      <dt>Error</dt><dd>${esc(j.error || '-')}</dd>
    </dl>
    <p>${j.state === 'queued' || j.state === 'running' ? `<button class="danger" data-action="cancel" data-id="${j.id}">Cancel job</button>` : ''}
       ${j.state === 'failed' || j.state === 'cancelled' ? `<button data-action="retry" data-id="${j.id}">Retry job</button>` : ''}</p>
    <h2>Dependencies</h2>
    <div class="panel">${dagSvg(graph.graph)}</div>
    <h2>Tasks and attempts</h2>
    <table id="tasks"><thead><tr><th>Task</th><th>State</th><th>Progress</th><th>Attempts</th></tr></thead>
    <tbody>${(j.tasks || []).map(t => `<tr data-task-id="${t.id}"><td>${t.index}</td><td>${stateCell(t.state)}</td><td>${bar(t.progress)}</td>
      <td>${t.attempts.map(a => `#${a.id} ${esc(a.worker || '?')} ${stateCell(a.state)}${a.error ? ' — ' + esc(a.error) : ''}`).join('<br>') || '-'}</td></tr>`).join('')}
    </tbody></table>
    <h2>Training loss</h2>
    ${points.length ? `<div class="panel">${lossSvg(points)}<div class="dim" id="loss-caption">${points.length} points, last loss
        <span id="loss-last">${esc(points[points.length - 1].loss)}</span> at step ${esc(points[points.length - 1].step)}</div></div>`
      : '<div class="placeholder" id="loss-placeholder">No training loss for this job (training jobs report it as they run).</div>'}
    ${sheet ? `<h2>Contact sheet</h2><div class="panel"><a href="${sheet}" target="_blank"><img id="contact-sheet" src="${sheet}" alt="contact sheet of job ${j.id}"></a></div>` : ''}
    <h2>Ledger events</h2>
    ${events && events.length ? `<table id="ledger"><thead><tr><th>Seq</th><th>Type</th><th>Time</th><th>Details</th></tr></thead>
      <tbody>${events.map(e => `<tr data-seq="${esc(e.seq)}" data-type="${esc(e.payload.type)}"><td class="num">${esc(e.seq)}</td>
        <td>${esc(e.payload.type)}</td><td>${esc(e.payload.t ? new Date(e.payload.t).toISOString() : '-')}</td>
        <td class="ev">${eventSummary(e.payload)}</td></tr>`).join('')}</tbody></table>`
      : `<div class="placeholder" id="ledger-placeholder">${esc(ledgerNote)}</div>`}
    <h2>Log</h2>
    <pre class="log" id="log">${log.lines.map(l => esc(`${l.t} [task ${l.task} attempt ${l.attempt}] ${l.text}`)).join('\n') || '(no log lines)'}</pre>`;
}

async function viewWorkers(v) {
  const doc = await api('GET', '/api/v1/workers');
  v.innerHTML = `
    <h2>Workers</h2>
    <table id="workers"><thead><tr><th>ID</th><th>Name</th><th>Pool</th><th>State</th><th>Devices</th>
      <th>Current tasks</th><th>Heartbeat</th><th>Drained</th><th>Actions</th></tr></thead>
    <tbody>${doc.workers.map(w => `<tr data-worker-id="${w.id}" data-worker-name="${esc(w.name)}">
      <td>${w.id}</td><td>${esc(w.name)}</td><td>${esc(w.pool || '(default)')}</td><td class="worker-state">${stateCell(w.state)}</td>
      <td>${(w.devices || []).map(d => `${esc(d.name)} (${esc(d.memory_mb)} MiB)`).join('<br>') || '-'}</td>
      <td class="running">${(w.running || []).map(a => `attempt ${a}`).join(', ') || '-'}</td>
      <td>${esc(ms(w.heartbeat_age_ms))} ago</td>
      <td class="drained-cell">${w.drained ? '<span class="drained">drained</span>' : 'no'}</td>
      <td>${w.drained ? `<button data-action="undrain" data-id="${w.id}">Undrain</button>`
                      : `<button data-action="drain" data-id="${w.id}">Drain</button>`}</td></tr>`).join('')}
    </tbody></table>`;
}

async function viewSchedules(v) {
  const doc = await api('GET', '/api/v1/schedules');
  v.innerHTML = `
    <h2>Schedules</h2>
    <table id="schedules"><thead><tr><th>ID</th><th>Project</th><th>Name</th><th>Cron</th><th>Zone</th><th>Kind</th><th>Next</th><th>Last job</th></tr></thead>
    <tbody>${doc.schedules.map(s => `<tr data-schedule-id="${s.id}"><td>${s.id}</td><td>${esc(s.project)}</td><td>${esc(s.name)}</td>
      <td><code>${esc(s.cron)}</code></td><td>${esc(s.tz)}</td><td>${esc(s.job.kind)}</td><td>${esc(s.next_at)}</td>
      <td>${s.last_job_id ? `<a href="#/job/${s.last_job_id}">${s.last_job_id}</a>` : '-'}</td></tr>`).join('')}
    </tbody></table>`;
}

/* ---- routing, polling, actions --------------------------------------------- */

function route() {
  const h = location.hash.replace(/^#/, '') || '/';
  const [path, query] = h.split('?');
  const m = path.match(/^\/job\/(\d+)$/);
  if (m) return { name: 'job', fn: v => viewJob(v, m[1]) };
  if (path === '/jobs') return { name: 'jobs', fn: v => viewJobs(v, query || '') };
  if (path === '/workers') return { name: 'workers', fn: viewWorkers };
  if (path === '/schedules') return { name: 'schedules', fn: viewSchedules };
  return { name: 'overview', fn: viewOverview };
}

async function refresh() {
  if (busy) {
    again = true;
    return;
  }
  // Do not redraw under a priority field being edited.
  if (document.activeElement && document.activeElement.classList.contains('prio')) return;
  busy = true;
  const r = route();
  const hash = location.hash;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === (r.name === 'job' ? 'jobs' : r.name));
  try {
    const v = document.createElement('div');
    await r.fn(v);
    if (location.hash !== hash) {
      again = true; // the address changed while this page loaded: draw the new one instead
      return;
    }
    $('#view').replaceChildren(...v.childNodes);
    $('#view').dataset.view = r.name;
    $('#view').dataset.hash = hash; // what was rendered, for tests racing a hash change
    $('#view').dataset.loaded = String(Date.now());
    $('#updated').textContent = new Date().toLocaleTimeString();
    setStatus(actionError);
  } catch (e) {
    setStatus(e.status === 401 ? 'Enter an API token (rushes token create ...) to see the farm.' : 'Error: ' + e.message);
  } finally {
    busy = false;
    if (again) {
      again = false;
      refresh();
    }
  }
}

async function whoami() {
  try {
    const w = await api('GET', '/api/v1/whoami');
    $('#who').textContent = w.auth ? `${w.role} of ${w.tenant === '*' ? 'every tenant' : w.tenant}` : 'auth off';
  } catch (e) {
    $('#who').textContent = 'not signed in';
  }
}

document.addEventListener('click', async ev => {
  const b = ev.target.closest('button[data-action]');
  if (!b) return;
  const id = b.dataset.id, act = b.dataset.action;
  const paths = { cancel: `/api/v1/jobs/${id}/cancel`, retry: `/api/v1/jobs/${id}/retry`,
    drain: `/api/v1/workers/${id}/drain`, undrain: `/api/v1/workers/${id}/undrain` };
  b.disabled = true;
  try {
    await api('POST', paths[act]);
    actionError = '';
  } catch (e) {
    actionError = `${act} ${id}: ${e.message}`;
  }
  setStatus(actionError);
  await refresh();
});

document.addEventListener('change', async ev => {
  const i = ev.target.closest('input[data-action="priority"]');
  if (!i) return;
  try {
    await api('POST', `/api/v1/jobs/${i.dataset.id}/priority`, { priority: Number(i.value) });
    actionError = '';
  } catch (e) {
    actionError = `priority ${i.dataset.id}: ${e.message}`;
  }
  setStatus(actionError);
  i.blur();
  await refresh();
});

$('#token-form').addEventListener('submit', ev => {
  ev.preventDefault();
  const t = $('#token').value.trim();
  if (t) localStorage.setItem('rushesToken', t);
  $('#token').value = '';
  whoami();
  refresh();
});

window.addEventListener('hashchange', refresh);
$('#poll').textContent = (POLL_MS / 1000).toString();
whoami();
refresh();
timer = setInterval(refresh, POLL_MS);
