// ops_https_load.mjs: closed-loop HTTPS load with node's built-ins.
//   node ops_https_load.mjs URL CA_FILE TOKEN CONNECTIONS SECONDS
// Prints {"rps", "p50_ms", "p99_ms", "n", "errors"} as one JSON line.
import https from 'node:https';
import { readFileSync } from 'node:fs';

const [url, caFile, token, conns, secs] = process.argv.slice(2);
const agent = new https.Agent({ keepAlive: true, maxSockets: Number(conns), ca: readFileSync(caFile) });
const lat = [];
let errors = 0;
const end = Date.now() + Number(secs) * 1000;

function once() {
  return new Promise(resolve => {
    const t0 = process.hrtime.bigint();
    const req = https.get(url, { agent, headers: { Authorization: 'Bearer ' + token } }, res => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) errors++;
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        resolve();
      });
    });
    req.on('error', () => { errors++; resolve(); });
  });
}

async function loop() { while (Date.now() < end) await once(); }
const t0 = Date.now();
await Promise.all(Array.from({ length: Number(conns) }, loop));
const el = (Date.now() - t0) / 1000;
lat.sort((a, b) => a - b);
const q = p => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0;
console.log(JSON.stringify({ rps: lat.length / el, p50_ms: q(0.5), p99_ms: q(0.99), n: lat.length, errors }));
agent.destroy();
