// Browser benchmark: deep-scan throughput of a generated ~1 GiB GGUF (Q8_0) in headless
// Chromium. Expects the app served on QUANTDOC_E2E_PORT (scripts/web-bench.sh builds,
// serves, and runs this next to the native CLI on the same file).
//
//   node bench.mjs FILE [THREADS...]   scan FILE in the browser with each thread count
//                                      (default 1 2), one JSON line per run
//   node bench.mjs --make FILE         write the benchmark GGUF to FILE
//   node bench.mjs --reads FILE        Blob read speed alone in workers (no app, no wasm):
//                                      FileReaderSync slices, blob.arrayBuffer() and BYOB
//                                      streams, 1 and 2 workers, with the CPU time they cost
//
// Each scan line has the app's own split of the workers' time (waiting for bytes against
// computing), the workers' wasm memory, and the renderer processes' resident memory
// before the file was dropped and at its peak during the scan.
import { statSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  launch, openPage, foreign, makeGguf, browserPid, rendererRssKiB, peakRendererRssKiB, here,
  cpuSecondsOfBrowser,
} from './lib.mjs';

const TENSORS = 61; // 61 x 17.8 MB of Q8_0 = 1.01 GiB
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

async function scanInBrowser(browser, file, threads) {
  const pid = browserPid(browser);
  const { context, page, requests, errors } = await openPage(browser, `/?threads=${threads}`);
  await page.waitForSelector('#file-input', { state: 'attached' });
  await page.waitForTimeout(500);
  const idle = rendererRssKiB(pid);
  const loadBefore = load();
  const cpu0 = cpuSecondsOfBrowser(pid);
  const t0 = Date.now();
  await page.setInputFiles('#file-input', file);
  await page.waitForSelector('#summary', { timeout: 60000 });
  const headerMs = Date.now() - t0;
  const peak = await peakRendererRssKiB(pid, page.waitForSelector('#scan-done', { timeout: 600000 }));
  const cpu = cpuSecondsOfBrowser(pid) - cpu0;
  const done = page.locator('#scan-done');
  const text = await done.textContent();
  const m = text.match(/in ([\d.]+) s \(([\d.]+) MB\/s, (\d+) thread/);
  // (An app without these attributes, e.g. an older build, gives nulls.)
  const list = async (name) => ((await done.getAttribute(`data-scanner-${name}`)) ?? '').split(',').filter(Boolean).map(Number);
  const [bytes, readMs, computeMs, wasm] = await Promise.all(['bytes', 'read-ms', 'compute-ms', 'wasm-bytes'].map(list));
  const coordinatorWasm = Number(await done.getAttribute('data-coordinator-wasm-bytes'));
  const scanned = bytes.length ? bytes.reduce((a, b) => a + b, 0) : Number(m?.[2]) * Number(m?.[1]) * 1e6;
  const leaked = foreign(requests);
  await context.close();
  if (!m) throw new Error(`unexpected scan text: ${text}`);
  if (leaked.length) throw new Error(`requests left the page: ${leaked}`);
  if (errors.length) throw new Error(`page errors: ${errors}`);
  const MiB = 1 << 20;
  return {
    threads: Number(m[3]), seconds: Number(m[1]), mb_s: Number(m[2]), header_ms: headerMs,
    // Per worker: MB/s while computing, and the share of its time spent waiting for bytes.
    compute_mb_s: bytes.length ? bytes.map((b, i) => +(b / computeMs[i] / 1e3).toFixed(1)) : null,
    read_wait: bytes.length ? readMs.map((r, i) => +(r / (r + computeMs[i])).toFixed(3)) : null,
    cpu_ns_per_byte: cpu === null ? null : +((cpu * 1e9) / scanned).toFixed(2),
    wasm_mib: bytes.length ? { coordinator: +(coordinatorWasm / MiB).toFixed(1), scanners: wasm.map((w) => +(w / MiB).toFixed(1)) } : null,
    renderer_rss_mib: idle === null ? null : { idle: Math.round(idle / 1024), peak: Math.round(peak / 1024), growth: Math.round((peak - idle) / 1024) },
    load_before: loadBefore, load_after: load(),
  };
}

/// Serve tests/e2e/bench-reads/ on a free localhost port (no CSP: its worker is a plain
/// script) and measure Blob reads alone.
async function readBench(file) {
  const root = join(here, 'bench-reads');
  const types = { '.html': 'text/html', '.js': 'text/javascript' };
  const server = createServer((req, res) => {
    const name = req.url === '/' ? 'index.html' : req.url.slice(1).split('?')[0];
    if (!['index.html', 'page.js', 'read.js'].includes(name)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': types[name.slice(name.lastIndexOf('.'))] });
    res.end(readFileSync(join(root, name)));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/`;
  const browser = await launch();
  const pid = browserPid(browser);
  const MiB = 1 << 20;
  const configs = [
    ['frs', 4 * MiB, 1], ['frs', 32 * MiB, 1], ['frs', 32 * MiB, 2],
    ['arraybuffer', 32 * MiB, 1], ['arraybuffer', 32 * MiB, 2],
    ['stream', MiB, 1], ['stream', MiB, 2],
  ];
  try {
    for (const [mode, slice, workers] of configs) {
      const page = await browser.newPage();
      await page.goto(url);
      await page.setInputFiles('#file', file);
      await page.waitForTimeout(300);
      const idle = rendererRssKiB(pid);
      const cpu0 = cpuSecondsOfBrowser(pid);
      const loadBefore = load();
      const run = page.evaluate(([m, s, w]) => window.readAll(m, s, w), [mode, slice, workers]);
      const peak = await peakRendererRssKiB(pid, run);
      const r = await run;
      const cpu = cpuSecondsOfBrowser(pid) - cpu0;
      console.log(JSON.stringify({
        where: 'reads only', mode, slice_mib: slice / MiB, workers, mb_s: Math.round(r.bytes / r.ms / 1e3),
        cpu_ns_per_byte: cpu === null ? null : +((cpu * 1e9) / r.bytes).toFixed(2),
        renderer_rss_growth_mib: idle === null ? null : Math.round((peak - idle) / 1024),
        load_before: loadBefore, load_after: load(),
      }));
      await page.close();
    }
  } finally {
    await browser.close();
    server.close();
  }
}

const args = process.argv.slice(2);
if (args[0] === '--make') {
  makeGguf(args[1], TENSORS);
  console.log(JSON.stringify({ file: args[1], bytes: statSync(args[1]).size }));
} else if (args[0] === '--reads') {
  await readBench(args[1]);
} else {
  const counts = args.slice(1).filter((a) => !a.startsWith('--')).map(Number);
  const threads = counts.length ? counts : [1, 2];
  const browser = await launch();
  try {
    for (const t of threads) {
      console.log(JSON.stringify({ where: 'browser', ...(await scanInBrowser(browser, args[0], t)) }));
    }
  } finally {
    await browser.close();
  }
}
