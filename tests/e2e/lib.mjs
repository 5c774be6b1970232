// Shared helpers of the browser tests and the benchmark: start Debian's chromium through
// playwright-core (no browser download), open the app, and watch every request.
import { chromium } from 'playwright-core';
import {
  existsSync, statSync, openSync, writeSync, closeSync, renameSync, mkdirSync, writeFileSync,
  readdirSync, readFileSync,
} from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, '..', '..');
export const fixtures = process.env.QUANTDOC_FIXTURES || join(repo, '..', 'shared', 'fixtures');
export const port = Number(process.env.QUANTDOC_E2E_PORT || 8091);
export const origin = `http://127.0.0.1:${port}`;
export const shots = join(here, 'screenshots');

let launches = 0;

export async function launch() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new Error(`${executablePath} not found: run scripts/web-setup.sh`);
  // A switch chromium ignores, to find this browser's process (browserPid).
  const tag = `--quantdoc-e2e=${process.pid}-${++launches}`;
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // No --user-data-dir: playwright starts every launch with a fresh temporary profile.
      tag,
      // Extra switches for experiments (e.g. --js-flags=--liftoff-only), space-separated.
      ...(process.env.QUANTDOC_CHROMIUM_ARGS || '').split(' ').filter(Boolean),
    ],
  });
  browser.quantdocTag = tag;
  return browser;
}

/// The process id of a browser started by `launch` (Linux: found in /proc), or null.
export function browserPid(browser) {
  if (!existsSync('/proc/self/status')) return null;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (args.includes(browser.quantdocTag) && !args.some((a) => a.startsWith('--type='))) return Number(d);
    } catch { /* the process ended */ }
  }
  return null;
}

/// A fresh page that records every request it (and its workers) makes.
export async function openPage(browser, path = '/', { colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme });
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  const page = await context.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('worker', (w) => requests.push(w.url()));
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const response = await page.goto(origin + path);
  return { context, page, requests, errors, response };
}

/// Requests that left this machine's app server.
export function foreign(requests) {
  return requests.filter((u) => !(u.startsWith(origin + '/') || u.startsWith('blob:' + origin) || u.startsWith('data:')));
}

/// Drag a folder (or files) from disk onto an element, as a user's drag from the file
/// manager does: the drop carries real file-system entries (a folder arrives as a
/// directory entry, not as files). Chromium's DevTools input domain makes the drag.
export async function dragFromDisk(page, selector, paths) {
  const box = await page.locator(selector).boundingBox();
  const x = box.x + box.width / 2, y = box.y + box.height / 2;
  const cdp = await page.context().newCDPSession(page);
  const data = { items: [], files: paths, dragOperationsMask: 1 };
  for (const type of ['dragEnter', 'dragOver', 'drop']) {
    await cdp.send('Input.dispatchDragEvent', { type, x, y, data });
  }
  await cdp.detach();
}

/// The benchmark GGUF: `tensors` Q8_0 tensors of 4096 x 4096 (17.8 MB each) with a
/// normal-ish scale and pseudo-random codes. Written once; an existing file is kept.
export function makeGguf(path, tensors) {
  if (existsSync(path) && statSync(path).size === ggufSize(tensors)) return;
  const NE0 = 4096, NE1 = 4096, Q8_0 = 8, BLOCK = 34, ALIGN = 32;
  const parts = [];
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s) => { u64(Buffer.byteLength(s)); parts.push(Buffer.from(s)); };
  const tensorBytes = (NE0 * NE1 / 32) * BLOCK;
  parts.push(Buffer.from('GGUF'));
  u32(3); u64(tensors); u64(2);
  str('general.architecture'); u32(8); str('llama');
  str('general.alignment'); u32(4); u32(ALIGN);
  for (let i = 0; i < tensors; i++) {
    str(`blk.${i}.ffn_up.weight`); u32(2); u64(NE0); u64(NE1); u32(Q8_0); u64(i * tensorBytes);
  }
  let header = Buffer.concat(parts);
  const pad = (ALIGN - (header.length % ALIGN)) % ALIGN;
  header = Buffer.concat([header, Buffer.alloc(pad)]);
  const data = Buffer.alloc(tensorBytes);
  let x = 0x12345678;
  for (let o = 0; o < tensorBytes; o += BLOCK) {
    data.writeUInt16LE(0x2066, o); // f16 ~ 0.0081
    for (let k = 2; k < BLOCK; k++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      data[o + k] = x & 0xff;
    }
  }
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  writeSync(fd, header);
  for (let i = 0; i < tensors; i++) writeSync(fd, data);
  closeSync(fd);
  renameSync(tmp, path);
}

function ggufSize(tensors) {
  let header = 4 + 4 + 8 + 8;
  header += 8 + 20 + 4 + 8 + 5; // general.architecture = "llama"
  header += 8 + 17 + 4 + 4; // general.alignment
  for (let i = 0; i < tensors; i++) header += 8 + `blk.${i}.ffn_up.weight`.length + 4 + 16 + 4 + 8;
  header += (32 - (header % 32)) % 32;
  return header + tensors * 4096 * 4096 / 32 * 34;
}

/// Write a small sharded Hugging Face checkpoint into `dir`: two safetensors shards (F16
/// and BF16 tensors of a 2-layer llama), model.safetensors.index.json, config.json.
/// Returns the names of the tensors.
export function makeShardedCheckpoint(dir) {
  mkdirSync(dir, { recursive: true });
  const hidden = 64, inter = 128, vocab = 256, layers = 2;
  const shapes = { 'model.embed_tokens.weight': [vocab, hidden], 'model.norm.weight': [hidden], 'lm_head.weight': [vocab, hidden] };
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    Object.assign(shapes, {
      [`${p}input_layernorm.weight`]: [hidden], [`${p}post_attention_layernorm.weight`]: [hidden],
      [`${p}self_attn.q_proj.weight`]: [hidden, hidden], [`${p}self_attn.k_proj.weight`]: [hidden, hidden],
      [`${p}self_attn.v_proj.weight`]: [hidden, hidden], [`${p}self_attn.o_proj.weight`]: [hidden, hidden],
      [`${p}mlp.gate_proj.weight`]: [inter, hidden], [`${p}mlp.up_proj.weight`]: [inter, hidden],
      [`${p}mlp.down_proj.weight`]: [hidden, inter],
    });
  }
  const names = Object.keys(shapes);
  const shards = [names.filter((n) => !n.includes('layers.1.') && n !== 'lm_head.weight' && n !== 'model.norm.weight'),
    names.filter((n) => n.includes('layers.1.') || n === 'lm_head.weight' || n === 'model.norm.weight')];
  const shardName = (i) => `model-0000${i + 1}-of-00002.safetensors`;
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return (seed / 2 ** 32 - 0.5) * 0.1; };
  const weightMap = {};
  let total = 0;
  shards.forEach((tensors, i) => {
    const header = { __metadata__: { format: 'pt' } };
    const blobs = [];
    let off = 0;
    for (const n of tensors) {
      const count = shapes[n].reduce((a, b) => a * b, 1);
      const isNorm = shapes[n].length === 1;
      const dtype = i === 0 ? 'F16' : 'BF16';
      const b = Buffer.alloc(count * 2);
      for (let k = 0; k < count; k++) {
        const v = isNorm ? 1 + rnd() : rnd();
        const f = new Float32Array([v]);
        const bits = new Uint32Array(f.buffer)[0];
        b.writeUInt16LE(dtype === 'BF16' ? bits >>> 16 : f32ToF16(v), 2 * k);
      }
      header[n] = { dtype, shape: shapes[n], data_offsets: [off, off + b.length] };
      off += b.length;
      blobs.push(b);
      weightMap[n] = shardName(i);
      total += b.length;
    }
    let json = Buffer.from(JSON.stringify(header));
    json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(join(dir, shardName(i)), Buffer.concat([len, json, ...blobs]));
  });
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: hidden, intermediate_size: inter,
    num_hidden_layers: layers, num_attention_heads: 4, num_key_value_heads: 4, vocab_size: vocab,
    rms_norm_eps: 1e-5, torch_dtype: 'float16', tie_word_embeddings: false,
  }, null, 2));
  return names;
}

function f32ToF16(v) {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp <= 0) return sign; // tiny values flush to zero: fine for test weights
  if (exp >= 31) return sign | 0x7c00;
  return sign | ((exp << 10) + Math.round(mant / 8192)); // a mantissa carry bumps the exponent
}

/// The processes descended from `browserPid`: `{ pid, stat }`, `stat` being the fields of
/// /proc/PID/stat after the command name. Linux only.
function browserTree(browserPid) {
  const procs = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      procs.set(Number(d), st.slice(st.lastIndexOf(')') + 2).split(' '));
    } catch { /* the process ended */ }
  }
  const under = (pid) => {
    for (let p = pid, i = 0; p > 1 && i < 64; i++) {
      if (p === browserPid) return true;
      p = Number(procs.get(p)?.[1] ?? 0);
    }
    return false;
  };
  return [...procs].filter(([pid]) => under(pid)).map(([pid, stat]) => ({ pid, stat }));
}

/// The browser's renderer processes: the page and its workers live in these.
function rendererPids(browserPid) {
  return browserTree(browserPid).map((p) => p.pid).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer'); } catch { return false; }
  });
}

function rssKiB(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      total += Number((readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/) || [0, 0])[1]);
    } catch { /* the process ended */ }
  }
  return total;
}

/// Resident memory (KiB) of the browser's renderer processes. Linux only (reads /proc);
/// null elsewhere.
export function rendererRssKiB(browserPid) {
  if (browserPid === null || !existsSync('/proc/self/status')) return null;
  return rssKiB(rendererPids(browserPid));
}

/// Poll the renderers' resident memory until `done` resolves; the largest value seen. Only
/// the renderers' /proc/PID/status is read at each poll (the process list once a second), so
/// the polling takes little from the scan it watches.
export async function peakRendererRssKiB(browserPid, done, everyMs = 25) {
  let peak = 0, finished = false;
  const result = done.then((v) => { finished = true; return v; }, (e) => { finished = true; throw e; });
  if (browserPid === null || !existsSync('/proc/self/status')) {
    await result;
    return 0;
  }
  let pids = rendererPids(browserPid), listed = Date.now();
  while (!finished) {
    if (Date.now() - listed > 1000) {
      pids = rendererPids(browserPid);
      listed = Date.now();
    }
    peak = Math.max(peak, rssKiB(pids));
    await new Promise((r) => setTimeout(r, everyMs));
  }
  await result;
  return peak;
}

/// CPU seconds (user + system) used so far by a browser and every process it started.
/// Linux only (reads /proc); null elsewhere.
export function cpuSecondsOfBrowser(browserPid) {
  if (browserPid === null || !existsSync('/proc/self/stat')) return null;
  // Fields 14 and 15 of /proc/PID/stat (utime, stime), in clock ticks (100 per second).
  const ticks = browserTree(browserPid).reduce((t, p) => t + Number(p.stat[11]) + Number(p.stat[12]), 0);
  return ticks / 100;
}
