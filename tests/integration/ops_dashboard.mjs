// ops_dashboard.mjs: drives the dashboard in real headless Chromium over the
// DevTools protocol, with node's built-ins only (run with
// --experimental-websocket on node 20). Loads each page, checks what it shows
// against the API, cancels a job and drains a worker through the UI, and
// saves screenshots.
//
//   node ops_dashboard.mjs API TOKEN ARTIFACTS_DIR
//        RUNNING_JOB_ID WORKER_TO_DRAIN_NAME AUDIT_TOKEN QUEUED_JOB_ID
//        WINDOWED_JOB_ID TRAIN_JOB_ID INFER_JOB_ID   (train/infer 0 = none)
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';

// Node 21+ (and 20 with --experimental-websocket) has WebSocket; Debian 12's
// node 18 does not, so a minimal client (RFC 6455: masked text frames out,
// unmasked frames in, fragments joined) stands in for it.
class MiniWebSocket {
  constructor(url) {
    const u = new URL(url);
    const key = randomBytes(16).toString('base64');
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname + u.search,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key } });
    req.on('upgrade', (res, sock, head) => {
      this.sock = sock;
      let buf = head;
      let parts = [];
      sock.on('data', d => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          if (buf.length < 2) return;
          const fin = buf[0] & 0x80, op = buf[0] & 0x0f;
          let len = buf[1] & 0x7f, off = 2;
          if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
          else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
          if (buf.length < off + len) return;
          const payload = buf.subarray(off, off + len);
          buf = buf.subarray(off + len);
          if (op === 0x1 || op === 0x0) {
            parts.push(payload);
            if (fin) { const text = Buffer.concat(parts).toString('utf8'); parts = []; this.onmessage?.({ data: text }); }
          }
        }
      });
      this.onopen?.();
    });
    req.on('error', e => this.onerror?.(e));
    req.end();
  }
  send(text) {
    const data = Buffer.from(text, 'utf8');
    const mask = randomBytes(4);
    let hdr;
    if (data.length < 126) { hdr = Buffer.from([0x81, 0x80 | data.length]); }
    else if (data.length < 65536) { hdr = Buffer.alloc(4); hdr[0] = 0x81; hdr[1] = 0x80 | 126; hdr.writeUInt16BE(data.length, 2); }
    else { hdr = Buffer.alloc(10); hdr[0] = 0x81; hdr[1] = 0x80 | 127; hdr.writeBigUInt64BE(BigInt(data.length), 2); }
    const masked = Buffer.alloc(data.length);
    for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ mask[i & 3];
    this.sock.write(Buffer.concat([hdr, mask, masked]));
  }
  close() { this.sock?.destroy(); }
}
const WS = globalThis.WebSocket ?? MiniWebSocket;

const [API, TOKEN, ART, RUNNING, DRAIN_NAME, AUDIT_TOKEN, QUEUED, WIN, TRAIN, INFER] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const sleep = ms => new Promise(r => setTimeout(r, ms));

function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exitCode = 1;
  throw new Error(msg);
}

async function freePort() {
  return new Promise(res => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}

async function apiGet(path) {
  const r = await fetch(API + path, { headers: { Authorization: 'Bearer ' + TOKEN } });
  if (!r.ok) fail(`GET ${path}: ${r.status}`);
  return r.json();
}

const port = await freePort();
const profile = mkdtempSync(join(tmpdir(), 'rushes-chromium-'));
const chrome = spawn(CHROMIUM, [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
  `--user-data-dir=${profile}`, `--remote-debugging-port=${port}`, '--window-size=1400,900', 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe'] });
let chromeErr = '';
chrome.stderr.on('data', d => { chromeErr += d; });

let ws;
let nextId = 1;
const pending = new Map();
const consoleErrors = [];

async function connect() {
  for (let i = 0; i < 100; i++) {
    try {
      const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      const page = list.find(t => t.type === 'page');
      if (page) return page.webSocketDebuggerUrl;
    } catch (e) { /* not up yet */ }
    await sleep(100);
  }
  fail('chromium did not open its debugging port: ' + chromeErr.slice(-500));
}

function send(method, params = {}) {
  const id = nextId++;
  ws.send(JSON.stringify({ id, method, params }));
  return new Promise((res, rej) => pending.set(id, { res, rej, method }));
}

async function evaluate(expr) {
  const r = await send('Runtime.evaluate', { expression: expr, awaitPromise: true, returnByValue: true });
  if (r.exceptionDetails) fail(`evaluate ${expr}: ${JSON.stringify(r.exceptionDetails).slice(0, 300)}`);
  return r.result.value;
}

async function waitFor(expr, what, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await evaluate(`(() => { try { return ${expr}; } catch (e) { return null; } })()`);
    if (v) return v;
    await sleep(100);
  }
  fail(`timed out waiting for ${what}`);
}

async function shot(name) {
  const r = await send('Page.captureScreenshot', { format: 'png' });
  const file = join(ART, name);
  writeFileSync(file, Buffer.from(r.data, 'base64'));
  return file;
}

async function go(hash, view) {
  const before = await evaluate(`Number(document.querySelector('#view')?.dataset.loaded || 0)`);
  await evaluate(`location.hash = ${JSON.stringify(hash)}; true`);
  // A fresh render of the right view, after the hash change.
  await waitFor(`document.querySelector('#view').dataset.view === ${JSON.stringify(view)} &&
                 document.querySelector('#view').dataset.hash === ${JSON.stringify(hash)} &&
                 Number(document.querySelector('#view').dataset.loaded) > ${before}`, `view ${view}`);
}

try {
  ws = new WS(await connect());
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
  ws.onmessage = ev => {
    const m = JSON.parse(ev.data);
    if (m.id && pending.has(m.id)) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p.rej(new Error(`${p.method}: ${m.error.message}`)); else p.res(m.result);
    } else if (m.method === 'Runtime.exceptionThrown') {
      consoleErrors.push(JSON.stringify(m.params.exceptionDetails).slice(0, 300));
    }
  };
  await send('Page.enable');
  await send('Runtime.enable');
  await send('Emulation.setDeviceMetricsOverride', { width: 1400, height: 900, deviceScaleFactor: 1, mobile: false });

  // --- queue overview ---------------------------------------------------
  await send('Page.navigate', { url: `${API}/ui/?token=${TOKEN}&poll=500#/` });
  await waitFor(`document.querySelector('#view')?.dataset.view === 'overview'`, 'overview');
  const projects = await apiGet('/api/v1/projects');
  const want = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
  for (const p of projects.projects) for (const s of Object.keys(want)) want[s] += p.jobs[s];
  // Counts may move between the API read and the render: retry briefly.
  await waitFor(`${JSON.stringify(want)} && Object.entries(${JSON.stringify(want)}).every(([s, n]) =>
      Number(document.querySelector('#count-' + s).textContent) === n)`, 'overview counts equal the API');
  const workers = await apiGet('/api/v1/workers');
  const up = workers.workers.filter(w => w.state === 'up').length;
  await waitFor(`Number(document.querySelector('#count-workers').textContent) === ${up}`, 'workers up count');
  const who = await evaluate(`document.querySelector('#who').textContent`);
  if (!who.includes('admin')) fail(`header shows "${who}", expected the admin role`);
  await shot('overview.png');

  // --- jobs table --------------------------------------------------------
  await go('#/jobs', 'jobs');
  const jobs = (await apiGet('/api/v1/jobs?limit=200')).jobs;
  const shown = await evaluate(`[...document.querySelectorAll('#jobs tbody tr')].map(tr =>
      [Number(tr.dataset.jobId), tr.querySelector('.job-state').textContent.trim()])`);
  if (shown.length !== jobs.length) fail(`jobs table has ${shown.length} rows, API ${jobs.length}`);
  for (const [id, st] of shown) {
    const j = jobs.find(x => x.id === id);
    if (!j) fail(`jobs table shows unknown job ${id}`);
    // A running job may finish between the two reads; the others are settled.
    if (j.state !== st && !(j.state === 'running' || st === 'running')) fail(`job ${id}: table says ${st}, API ${j.state}`);
  }
  const statesShown = new Set(shown.map(x => x[1]));
  for (const s of ['queued', 'running', 'succeeded', 'failed']) {
    if (!statesShown.has(s)) fail(`no ${s} job in the table (shown: ${[...statesShown]})`);
  }
  // The windowed job shows its window, shut.
  const winCell = await evaluate(`document.querySelector('tr[data-job-id="${WIN}"] .job-window')?.textContent || ''`);
  const winApi = (await apiGet(`/api/v1/jobs/${WIN}`)).job.window;
  if (!winApi || !winCell.includes(winApi.cron) || !winCell.includes('shut')) fail(`window cell of job ${WIN}: "${winCell}", API ${JSON.stringify(winApi)}`);
  await shot('jobs.png');

  // --- job page ----------------------------------------------------------
  await go(`#/job/${RUNNING}`, 'job');
  const job = (await apiGet(`/api/v1/jobs/${RUNNING}`)).job;
  const ntasks = await evaluate(`document.querySelectorAll('#tasks tbody tr').length`);
  if (ntasks !== job.tasks.length) fail(`job page shows ${ntasks} tasks, API ${job.tasks.length}`);
  const jst = await evaluate(`document.querySelector('#job-state').textContent.trim()`);
  if (jst !== job.state) fail(`job page state ${jst}, API ${job.state}`);
  await evaluate(`!!document.querySelector('#loss-placeholder, #loss') && !!document.querySelector('#ledger-placeholder, #ledger')`) ||
    fail('job page lacks the loss curve or ledger section');
  await waitFor(`document.querySelector('#log').textContent.length > 0`, 'log section');
  await shot('job.png');

  // --- windowed job page ----------------------------------------------------
  await go(`#/job/${WIN}`, 'job');
  const winDd = await evaluate(`document.querySelector('#job-window').textContent`);
  if (!winDd.includes(winApi.cron) || !winDd.includes(winApi.tz) || !winDd.includes('1 h')) fail(`job ${WIN} window shown as "${winDd}"`);

  // --- training and infer job pages: DAG, loss curve, contact sheet, ledger --
  async function checkDag(id) {
    const g = (await apiGet(`/api/v1/jobs/${id}/graph`)).graph;
    const nodes = await evaluate(`[...document.querySelectorAll('#dag .dag-node')].map(n =>
        [Number(n.dataset.jobId), n.dataset.state, n.dataset.role])`);
    const want = g.nodes.map(n => [n.id, n.state, n.role]);
    const key = a => JSON.stringify([...a].sort());
    if (key(nodes) !== key(want)) fail(`job ${id} DAG shows ${JSON.stringify(nodes)}, API ${JSON.stringify(want)}`);
    const edges = await evaluate(`document.querySelectorAll('#dag .dag-edge').length`);
    if (edges !== g.edges.length) fail(`job ${id} DAG draws ${edges} edges, API ${g.edges.length}`);
    return g;
  }
  async function checkLedger(id, project) {
    const evs = (await apiGet(`/api/v1/ledger/events?project=${project}`)).events
      .filter(e => e.payload && Number(e.payload.job) === Number(id)).map(e => e.seq);
    const rows = await evaluate(`[...document.querySelectorAll('#ledger tbody tr')].map(r => Number(r.dataset.seq))`);
    if (JSON.stringify(rows) !== JSON.stringify(evs)) fail(`job ${id} ledger rows ${rows}, API ${evs}`);
    if (!evs.length && !(await evaluate(`!!document.querySelector('#ledger-placeholder')`))) fail(`job ${id}: no ledger placeholder`);
    return evs.length;
  }
  if (Number(TRAIN) > 0) {
    await go(`#/job/${TRAIN}`, 'job');
    const g = await checkDag(TRAIN);
    if (!g.nodes.some(n => n.id === Number(INFER) && n.role === 'child')) fail(`infer job ${INFER} is not a child of ${TRAIN}`);
    const pts = (await apiGet(`/api/v1/jobs/${TRAIN}/loss`)).points;
    const svg = await evaluate(`(() => { const s = document.querySelector('svg#loss');
        return s && { n: Number(s.dataset.points), last: Number(s.dataset.lastLoss),
          lines: [...s.querySelectorAll('polyline')].map(p => p.getAttribute('points').trim().split(/\\s+/).length) }; })()`);
    if (!svg) fail(`job ${TRAIN}: no loss curve`);
    if (svg.n !== pts.length || svg.last !== pts[pts.length - 1].loss) fail(`loss curve ${JSON.stringify(svg)}, API ${pts.length} points, last ${pts[pts.length - 1].loss}`);
    if (svg.lines.reduce((a, b) => a + b, 0) !== pts.length) fail(`loss polylines hold ${svg.lines} vertices, API ${pts.length} points`);
    const nTrainEv = await checkLedger(TRAIN, 'feature');
    await shot('job-train.png');
    // Into the infer job through its DAG node.
    const before = await evaluate(`Number(document.querySelector('#view').dataset.loaded)`);
    await evaluate(`document.querySelector('#dag .dag-node[data-job-id="${INFER}"]').closest('a').dispatchEvent(new MouseEvent('click', {bubbles: true})); true`);
    // The drawn route, not just the address: a poll of the train page may redraw it after the click.
    await waitFor(`location.hash === '#/job/${INFER}' && document.querySelector('#view').dataset.hash === '#/job/${INFER}' &&
                   Number(document.querySelector('#view').dataset.loaded) > ${before}`, 'infer job page via the DAG');
    await checkDag(INFER);
    await waitFor(`document.querySelector('img#contact-sheet')?.complete && document.querySelector('img#contact-sheet').naturalWidth > 0`, 'contact sheet image');
    const nInferEv = await checkLedger(INFER, 'feature');
    if (nTrainEv + nInferEv === 0) fail('neither removal job shows a ledger event');
    if (await evaluate(`!!document.querySelector('svg#loss')`)) fail(`infer job ${INFER} shows a loss curve`);
    await shot('job-infer.png');
  }

  // --- workers -----------------------------------------------------------
  await go('#/workers', 'workers');
  const names = await evaluate(`[...document.querySelectorAll('#workers tbody tr')].map(tr => tr.dataset.workerName).sort()`);
  const apiNames = workers.workers.map(w => w.name).sort();
  if (JSON.stringify(names) !== JSON.stringify(apiNames)) fail(`workers page ${names}, API ${apiNames}`);
  const busyShown = await evaluate(`[...document.querySelectorAll('#workers .running')].some(td => td.textContent.includes('attempt'))`);
  if (!busyShown) fail('no worker shows its current task');
  await shot('workers.png');

  // --- cancel through the UI ---------------------------------------------
  await go('#/jobs', 'jobs');
  await evaluate(`document.querySelector('button[data-action="cancel"][data-id="${RUNNING}"]').click(); true`);
  await waitFor(`document.querySelector('tr[data-job-id="${RUNNING}"] .job-state').textContent.trim() === 'cancelled'`,
    'the cancelled job shown as cancelled');
  const after = (await apiGet(`/api/v1/jobs/${RUNNING}`)).job.state;
  if (after !== 'cancelled') fail(`job ${RUNNING} is ${after} after the UI cancelled it`);
  await shot('jobs-after-cancel.png');

  // --- drain through the UI ----------------------------------------------
  await go('#/workers', 'workers');
  await evaluate(`document.querySelector('tr[data-worker-name="${DRAIN_NAME}"] button[data-action="drain"]').click(); true`);
  await waitFor(`document.querySelector('tr[data-worker-name="${DRAIN_NAME}"] .drained-cell').textContent.includes('drained')`,
    'the drained worker shown as drained');
  const w = (await apiGet('/api/v1/workers')).workers.find(x => x.name === DRAIN_NAME);
  if (!w || w.drained !== true) fail(`worker ${DRAIN_NAME} not drained in the API after the UI drained it`);
  await shot('workers-after-drain.png');

  // --- schedules page renders ----------------------------------------------
  await go('#/schedules', 'schedules');
  await shot('schedules.png');

  // --- an audit token: the page shows the server's 403, nothing changes ----
  await send('Page.navigate', { url: `${API}/ui/?token=${AUDIT_TOKEN}&poll=500#/jobs` });
  await waitFor(`document.querySelector('#view')?.dataset.view === 'jobs'`, 'jobs view as audit');
  await waitFor(`document.querySelector('#who').textContent.includes('audit')`, 'header shows the audit role');
  await evaluate(`document.querySelector('button[data-action="cancel"][data-id="${QUEUED}"]').click(); true`);
  await waitFor(`document.querySelector('#status').textContent.includes('403')`, 'the 403 shown to an audit token');
  const still = (await apiGet(`/api/v1/jobs/${QUEUED}`)).job.state;
  if (still !== 'queued') fail(`an audit token's cancel changed job ${QUEUED} to ${still}`);
  await shot('audit-refused.png');

  if (consoleErrors.length) fail('page exceptions: ' + consoleErrors.join('; '));
  console.log('dashboard: overview, jobs, job (DAG, loss, contact sheet, ledger, window), workers, schedules checked; cancel and drain through the UI');
} catch (e) {
  if (!process.exitCode) { console.error('FAIL: ' + e.message); process.exitCode = 1; }
  try { await shot('failure.png'); } catch (e2) { /* best effort */ }
} finally {
  try { ws?.close(); } catch (e) { /* closing */ }
  chrome.kill('SIGKILL');
  await sleep(200);
  rmSync(profile, { recursive: true, force: true });
}
