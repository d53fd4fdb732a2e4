/*
 * Rushes dashboard: a static single page over the REST API (docs/API.md).
 * No build step, no dependencies. Hash routes: #/ (queue), #/jobs,
 * #/job/ID, #/workers, #/schedules. It polls the API (default every 2 s;
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
      <th>Progress</th><th>Tasks</th><th>Created</th><th>Actions</th></tr></thead>
    <tbody>${doc.jobs.map(j => `<tr data-job-id="${j.id}">
      <td><a href="#/job/${j.id}">${j.id}</a></td><td>${esc(j.project)}</td><td>${esc(j.kind)}</td>
      <td class="job-state">${stateCell(j.state)}</td>
      <td><input class="prio" type="number" min="-100" max="100" value="${j.priority}" data-action="priority" data-id="${j.id}"
        ${j.state === 'queued' || j.state === 'running' ? '' : 'disabled'}></td>
      <td>${bar(j.progress)}</td><td class="num">${j.tasks_done}/${j.tasks_total}</td><td>${esc(ago(j.created_at))}</td>
      <td>${j.state === 'queued' || j.state === 'running' ? `<button class="danger" data-action="cancel" data-id="${j.id}">Cancel</button>` : ''}
          ${j.state === 'failed' || j.state === 'cancelled' ? `<button data-action="retry" data-id="${j.id}">Retry</button>` : ''}</td>
    </tr>`).join('')}</tbody></table>`;
}

async function viewJob(v, id) {
  const [doc, log] = await Promise.all([api('GET', `/api/v1/jobs/${id}`), api('GET', `/api/v1/jobs/${id}/log?limit=200`)]);
  const j = doc.job;
  // Training metrics and ledger events come from endpoints other modules
  // add; until they exist the sections say so.
  let metrics = null;
  let ledger = null;
  try { metrics = await api('GET', `/api/v1/jobs/${id}/metrics`); } catch (e) { metrics = null; }
  try { ledger = await api('GET', `/api/v1/ledger/events?job=${id}`); } catch (e) { ledger = null; }
  v.innerHTML = `
    <h2>Job ${j.id}: ${esc(j.kind)} in ${esc(j.project)}</h2>
    <dl class="kv">
      <dt>State</dt><dd id="job-state">${stateCell(j.state)}</dd>
      <dt>Progress</dt><dd>${bar(j.progress)} ${j.tasks_done}/${j.tasks_total} tasks</dd>
      <dt>Priority</dt><dd>${j.priority}</dd>
      <dt>Depends on</dt><dd>${j.depends_on.map(d => `<a href="#/job/${d}">${d}</a>`).join(', ') || '-'}</dd>
      <dt>Created</dt><dd>${esc(j.created_at)}</dd><dt>Started</dt><dd>${esc(j.started_at || '-')}</dd>
      <dt>Finished</dt><dd>${esc(j.finished_at || '-')}</dd>
      <dt>Error</dt><dd>${esc(j.error || '-')}</dd>
    </dl>
    <p>${j.state === 'queued' || j.state === 'running' ? `<button class="danger" data-action="cancel" data-id="${j.id}">Cancel job</button>` : ''}
       ${j.state === 'failed' || j.state === 'cancelled' ? `<button data-action="retry" data-id="${j.id}">Retry job</button>` : ''}</p>
    <h2>Tasks and attempts</h2>
    <table id="tasks"><thead><tr><th>Task</th><th>State</th><th>Progress</th><th>Attempts</th></tr></thead>
    <tbody>${(j.tasks || []).map(t => `<tr data-task-id="${t.id}"><td>${t.index}</td><td>${stateCell(t.state)}</td><td>${bar(t.progress)}</td>
      <td>${t.attempts.map(a => `#${a.id} ${esc(a.worker || '?')} ${stateCell(a.state)}${a.error ? ' — ' + esc(a.error) : ''}`).join('<br>') || '-'}</td></tr>`).join('')}
    </tbody></table>
    <h2>Training loss</h2>
    ${metrics && metrics.points && metrics.points.length ? '<canvas id="loss" width="640" height="200"></canvas>'
      : '<div class="placeholder" id="loss-placeholder">No training metrics for this job (they appear here for training jobs).</div>'}
    <h2>Ledger events</h2>
    ${ledger && ledger.events ? `<table id="ledger"><tbody>${ledger.events.map(e => `<tr><td>${esc(e.seq)}</td><td>${esc(e.created_at)}</td><td>${esc(JSON.stringify(e.payload))}</td></tr>`).join('')}</tbody></table>`
      : '<div class="placeholder" id="ledger-placeholder">No ledger events recorded for this job.</div>'}
    <h2>Log</h2>
    <pre class="log" id="log">${log.lines.map(l => esc(`${l.t} [task ${l.task} attempt ${l.attempt}] ${l.text}`)).join('\n') || '(no log lines)'}</pre>`;
  if (metrics && metrics.points && metrics.points.length) drawLoss($('#loss'), metrics.points);
}

function drawLoss(canvas, points) {
  const ctx = canvas.getContext('2d');
  const xs = points.map(p => p.step), ys = points.map(p => p.loss);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  ctx.strokeStyle = '#4da3ff';
  ctx.beginPath();
  points.forEach((p, i) => {
    const x = 10 + (canvas.width - 20) * (p.step - x0) / Math.max(1, x1 - x0);
    const y = canvas.height - 10 - (canvas.height - 20) * (p.loss - y0) / Math.max(1e-12, y1 - y0);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
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
  if (busy) return;
  // Do not redraw under a priority field being edited.
  if (document.activeElement && document.activeElement.classList.contains('prio')) return;
  busy = true;
  const r = route();
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === (r.name === 'job' ? 'jobs' : r.name));
  try {
    const v = document.createElement('div');
    await r.fn(v);
    $('#view').replaceChildren(...v.childNodes);
    $('#view').dataset.view = r.name;
    $('#view').dataset.loaded = String(Date.now());
    $('#updated').textContent = new Date().toLocaleTimeString();
    setStatus(actionError);
  } catch (e) {
    setStatus(e.status === 401 ? 'Enter an API token (rushes token create ...) to see the farm.' : 'Error: ' + e.message);
  } finally {
    busy = false;
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
