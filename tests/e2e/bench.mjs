// Browser benchmark: deep-scan throughput of a generated ~1 GiB GGUF (Q8_0) in headless
// Chromium with 1 and 2 scan workers. Expects the app served on QUANTDOC_E2E_PORT
// (scripts/web-bench.sh builds, serves, runs this and the native CLI on the same file).
//
//   node bench.mjs FILE            scan FILE in the browser, print one JSON line per run
//   node bench.mjs --make FILE     write the benchmark GGUF to FILE
import { openSync, writeSync, closeSync, existsSync, statSync } from 'node:fs';
import { launch, openPage, foreign } from './lib.mjs';

const TENSORS = 61; // 61 x 17.0 MiB of Q8_0 = 1.01 GiB
const NE0 = 4096, NE1 = 4096, Q8_0 = 8, BLOCK = 34, ALIGN = 32;

function makeGguf(path) {
  const parts = [];
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s) => { u64(Buffer.byteLength(s)); parts.push(Buffer.from(s)); };
  const tensorBytes = (NE0 * NE1 / 32) * BLOCK;
  parts.push(Buffer.from('GGUF'));
  u32(3); u64(TENSORS); u64(2);
  str('general.architecture'); u32(8); str('llama');
  str('general.alignment'); u32(4); u32(ALIGN);
  for (let i = 0; i < TENSORS; i++) {
    str(`blk.${i}.ffn_up.weight`); u32(2); u64(NE0); u64(NE1); u32(Q8_0); u64(i * tensorBytes);
  }
  let header = Buffer.concat(parts);
  const pad = (ALIGN - (header.length % ALIGN)) % ALIGN;
  header = Buffer.concat([header, Buffer.alloc(pad)]);
  // One tensor's worth of blocks: a normal-ish scale and pseudo-random int8 codes.
  const data = Buffer.alloc(tensorBytes);
  let x = 0x12345678;
  for (let o = 0; o < tensorBytes; o += BLOCK) {
    data.writeUInt16LE(0x2066, o); // f16 ~ 0.0081
    for (let k = 2; k < BLOCK; k++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      data[o + k] = x & 0xff;
    }
  }
  const fd = openSync(path, 'w');
  writeSync(fd, header);
  for (let i = 0; i < TENSORS; i++) writeSync(fd, data);
  closeSync(fd);
}

async function scanInBrowser(browser, file, threads) {
  const { context, page, requests, errors } = await openPage(browser, `/?threads=${threads}`);
  await page.waitForSelector('#file-input', { state: 'attached' });
  const t0 = Date.now();
  await page.setInputFiles('#file-input', file);
  await page.waitForSelector('#summary', { timeout: 60000 });
  const headerMs = Date.now() - t0;
  await page.waitForSelector('#scan-done', { timeout: 600000 });
  const text = await page.textContent('#scan-done');
  const m = text.match(/in ([\d.]+) s \(([\d.]+) MB\/s, (\d+) thread/);
  const leaked = foreign(requests);
  await context.close();
  if (!m) throw new Error(`unexpected scan text: ${text}`);
  if (leaked.length) throw new Error(`requests left the page: ${leaked}`);
  if (errors.length) throw new Error(`page errors: ${errors}`);
  return { threads: Number(m[3]), seconds: Number(m[1]), mb_s: Number(m[2]), header_ms: headerMs };
}

const args = process.argv.slice(2);
if (args[0] === '--make') {
  if (!existsSync(args[1])) makeGguf(args[1]);
  console.log(JSON.stringify({ file: args[1], bytes: statSync(args[1]).size }));
} else {
  const browser = await launch();
  try {
    for (const threads of [1, 2]) {
      console.log(JSON.stringify({ where: 'browser', ...(await scanInBrowser(browser, args[0], threads)) }));
    }
  } finally {
    await browser.close();
  }
}
