// End-to-end tests of the web app in headless Chromium. Expects the app served on
// QUANTDOC_E2E_PORT (scripts/web-e2e.sh builds, serves and runs this).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync, mkdtempSync, copyFileSync, existsSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  launch, openPage, foreign, fixtures, shots, repo, origin, dragFromDisk, makeShardedCheckpoint,
  makeGguf, browserPid, rendererRssKiB, peakRendererRssKiB,
} from './lib.mjs';

const manifest = JSON.parse(readFileSync(join(fixtures, 'MANIFEST.json'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'quantdoc-e2e-files-'));
let browser;

before(async () => {
  mkdirSync(shots, { recursive: true });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  rmSync(work, { recursive: true, force: true });
});

/// Drop files on the drop zone the way a user's drag does: a DataTransfer with Files.
async function drop(page, paths) {
  const files = paths.map((p) => ({ name: p.split('/').pop(), b64: readFileSync(p).toString('base64') }));
  // On a loaded machine the app may still be mounting when the test is ready to drop.
  await page.waitForSelector('#drop');
  await page.evaluate((files) => {
    const dt = new DataTransfer();
    for (const f of files) {
      const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], f.name));
    }
    const zone = document.querySelector('#drop');
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, files);
}

async function findingCodes(page) {
  return page.$$eval('#findings li.finding', (els) => els.map((e) => e.dataset.code).sort());
}

/// Population statistics of a fixture's expected f32 output.
function expectedStats(entry) {
  const b = readFileSync(join(fixtures, entry.expected));
  const v = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  let mean = 0, m2 = 0, n = 0, min = Infinity, max = -Infinity;
  for (const x of v) {
    n++;
    const d = x - mean;
    mean += d / n;
    m2 += d * (x - mean);
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  return { n, mean, std: Math.sqrt(m2 / n), min, max };
}

async function statOf(page, key) {
  const v = await page.getAttribute(`#detail-stats dd[data-key="${key}"]`, 'data-value');
  return v === null ? null : JSON.parse(v);
}

const FIXTURE = 'gguf/legacy.gguf';

test('the page is served with COOP/COEP and a CSP that allows nothing foreign', async () => {
  const { context, response, page } = await openPage(browser);
  const h = response.headers();
  assert.equal(h['cross-origin-opener-policy'], 'same-origin');
  assert.equal(h['cross-origin-embedder-policy'], 'require-corp');
  const csp = h['content-security-policy'] || '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval' 'nonce-[^']+'/);
  assert.match(csp, /connect-src 'self'/);
  await page.waitForSelector('#drop');
  await context.close();
});

test('a dropped GGUF shows its summary, scan statistics and findings; links reproduce them', async () => {
  const { context, page, requests, errors } = await openPage(browser);
  await page.waitForSelector('#drop');
  const t0 = Date.now();
  await drop(page, [join(fixtures, FIXTURE)]);
  await page.waitForSelector('#summary');
  const headerMs = Date.now() - t0;
  assert.ok(headerMs < 3000, `summary took ${headerMs} ms`);
  assert.equal(await page.textContent('#format'), 'gguf v3');
  assert.equal(await page.textContent('#architecture'), 'llama');
  const file = manifest.files.find((f) => f.file === FIXTURE);
  assert.match(await page.textContent('#tensors-h'), new RegExp(`\\(${file.params.tensor_count}\\)`));

  await page.waitForSelector('#scan-done', { timeout: 30000 });
  assert.match(await page.textContent('#scan-done'), /Scan complete/);

  // Statistics of a tensor against the dequantized output gguf-py wrote.
  const entry = manifest.fixtures.find((f) => f.file === FIXTURE && f.ggml_type === 'Q4_0');
  await page.fill('#tensor-filter', entry.tensor);
  await page.click(`#tensors button.link:text-is("${entry.tensor}")`);
  await page.waitForSelector('#detail-stats');
  const want = expectedStats(entry);
  assert.equal(await statOf(page, 'elements'), want.n);
  assert.equal(await statOf(page, 'nan'), 0);
  assert.ok(Math.abs((await statOf(page, 'mean')) - want.mean) <= 1e-6 + 1e-5 * Math.abs(want.mean));
  assert.ok(Math.abs((await statOf(page, 'std')) - want.std) <= 1e-5 * want.std);
  assert.equal(await statOf(page, 'min'), want.min);
  assert.equal(await statOf(page, 'max'), want.max);
  assert.equal(await page.locator('#detail svg rect').count() > 0, true, 'histogram drawn');
  // Keyboard: the detail took focus, so a screen reader user lands on it.
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'detail-h');

  const codes = await findingCodes(page);
  await page.screenshot({ path: join(shots, 'report.png'), fullPage: true });

  // Share link: same findings in a fresh page, without the file.
  await page.click('#copy-link');
  await page.waitForSelector('#share-link');
  const url = await page.inputValue('#share-link');
  assert.ok(url.length < 8000, `link is ${url.length} chars`);
  assert.match(url, /#qd1\./);

  assert.deepEqual(foreign(requests), [], 'no request left the page');
  assert.deepEqual(errors, []);
  await context.close();

  const hash = url.slice(url.indexOf('#'));
  const shared = await openPage(browser, '/' + hash, { colorScheme: 'dark' });
  await shared.page.waitForSelector('#shared-banner');
  assert.deepEqual(await findingCodes(shared.page), codes);
  assert.equal(await shared.page.textContent('#format'), 'gguf v3');
  assert.equal(await shared.page.locator('#scan').count(), 0, 'no scan without the file');
  await shared.page.fill('#tensor-filter', entry.tensor);
  await shared.page.click(`#tensors button.link:text-is("${entry.tensor}")`);
  assert.equal(await statOf(shared.page, 'elements'), want.n);
  await shared.page.screenshot({ path: join(shots, 'shared-dark.png'), fullPage: true });

  // The receiver drops their own copy: same header, and after the scan the same tensors.
  await drop(shared.page, [join(fixtures, FIXTURE)]);
  await shared.page.waitForSelector('#comparison');
  assert.match(await shared.page.textContent('#comparison'), /Same file/);
  await shared.page.waitForSelector('#differing', { timeout: 30000 });
  assert.match(await shared.page.textContent('#differing'), /tensors with statistics in the link match/);
  assert.deepEqual(foreign(shared.requests), []);
  await shared.context.close();
});

test('a different file against a link is reported as different', async () => {
  const { context, page } = await openPage(browser);
  await drop(page, [join(fixtures, 'gguf/kquants.gguf')]);
  await page.waitForSelector('#scan-done', { timeout: 30000 });
  await page.click('#copy-link');
  const url = await page.inputValue('#share-link');
  await context.close();
  const other = await openPage(browser, '/' + url.slice(url.indexOf('#')));
  await other.page.waitForSelector('#shared-banner');
  await drop(other.page, [join(fixtures, FIXTURE)]);
  await other.page.waitForSelector('#comparison');
  assert.match(await other.page.textContent('#comparison'), /Different file/);
  await other.context.close();
});

test('a truncated file and a corrupt header give readable errors, and the tab stays alive', async () => {
  const bytes = readFileSync(join(fixtures, FIXTURE));
  const truncated = join(work, 'truncated.gguf');
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  const corrupt = join(work, 'corrupt.gguf');
  const bad = Buffer.from(bytes);
  bad.writeBigUInt64LE(0xffffffffffn, 8); // tensor count: far more than the file can hold
  writeFileSync(corrupt, bad);

  const { context, page, errors } = await openPage(browser);
  await drop(page, [truncated]);
  // Either the header cannot be read or the data section is short: both must be said.
  await page.waitForSelector('#error, #findings .group.error', { timeout: 30000 });
  const text = await page.textContent('main');
  assert.match(text, /past the end|truncated|beyond|short|outside/i);
  await page.screenshot({ path: join(shots, 'truncated.png'), fullPage: true });

  await drop(page, [corrupt]);
  await page.waitForSelector('#error');
  assert.match(await page.textContent('#error'), /corrupt\.gguf/);
  // Still responsive: a good file loads afterwards in the same tab.
  await drop(page, [join(fixtures, FIXTURE)]);
  await page.waitForSelector('#scan-done', { timeout: 30000 });
  assert.equal(await page.locator('#error').count(), 0);
  assert.deepEqual(errors, []);
  await context.close();
});

test('metadata strings are inert text and long arrays are collapsed', async () => {
  const { context, page } = await openPage(browser);
  await drop(page, [join(fixtures, FIXTURE)]);
  await page.waitForSelector('#metadata');
  // No element was created from metadata text.
  assert.equal(await page.locator('#metadata script, #metadata img, #metadata iframe').count(), 0);
  const link = await page.evaluate(() => document.querySelectorAll('a[href^="http"]').length);
  assert.equal(link, 0);
  await context.close();
});

test('the scan can be cancelled and everything works by keyboard', async () => {
  // A scan of 641 MB on one thread takes seconds: long enough to cancel it for certain
  // (a small fixture may finish before the button can be pressed).
  const file = join(work, 'big.gguf');
  makeGguf(file, 36);
  const { context, page, errors } = await openPage(browser, '/?threads=1');
  await page.waitForSelector('#drop');
  // Tab to the file picker label and beyond without a mouse.
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName);
  assert.ok(first, 'something takes focus');
  await page.setInputFiles('#file-input', file);
  await page.focus('#scan-cancel');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#scan-cancelled', { timeout: 30000 });
  const [done, total] = (await page.textContent('#scan-cancelled'))
    .match(/after (.+) of (.+)\./).slice(1);
  assert.notEqual(done, total, 'cancelled before the end');
  assert.equal(await page.locator('#scan-done').count(), 0);
  // The worker really stopped: no progress and no completion arrive afterwards.
  await page.waitForTimeout(1500);
  assert.equal(await page.locator('#scan-done, #scan-cancel').count(), 0);
  await page.focus('#tensor-filter');
  await page.keyboard.type('blk.1');
  await page.keyboard.press('Tab'); // type filter
  await page.keyboard.press('Tab'); // "#" header
  await page.keyboard.press('Tab'); // "Name" header
  await page.keyboard.press('Enter');
  assert.match(await page.textContent('#tensors thead'), /Name ▲/);
  // blk.1 and blk.10-19, sorted by name: blk.1 first, blk.19 last.
  const names = await page.$$eval('#tensors tbody button.link', (els) => els.map((e) => e.textContent));
  assert.equal(names.length, 11, names.join());
  assert.equal(names[0], 'blk.1.ffn_up.weight');
  assert.equal(names[10], 'blk.19.ffn_up.weight');
  // Open a tensor from the table by keyboard: focus lands on its detail.
  await page.focus('#tensors tbody button.link');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#detail');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'detail-h');
  // The scan restarts by keyboard and completes.
  await page.focus('#scan-start');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#scan-done', { timeout: 180000 });
  assert.deepEqual(errors, []);
  await context.close();
});

test('a dropped folder is read recursively and loads like the same folder picked', async () => {
  // models/ckpt/: a sharded checkpoint; models/ckpt/.git holds a stale copy of a shard
  // (as a cloned Hugging Face repository does) that must not be read.
  const root = join(work, 'models');
  const ckpt = join(root, 'ckpt');
  const names = makeShardedCheckpoint(ckpt);
  mkdirSync(join(ckpt, '.git', 'lfs'), { recursive: true });
  copyFileSync(join(ckpt, 'model-00002-of-00002.safetensors'), join(ckpt, '.git', 'lfs', 'model-00002-of-00002.safetensors'));
  writeFileSync(join(ckpt, 'README.md'), '# a test checkpoint\n');

  const { context, page, requests, errors } = await openPage(browser);
  await page.waitForSelector('#drop');
  await dragFromDisk(page, '#drop', [root]);
  await page.waitForSelector('#summary', { timeout: 30000 });
  assert.match(await page.textContent('#format'), /safetensors/);
  assert.match(await page.textContent('#tensors-h'), new RegExp(`\\(${names.length}\\)`));
  const files = await page.textContent('#summary dd');
  for (const f of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json', 'config.json']) {
    assert.ok(files.includes(`models/ckpt/${f}`), `${f} in ${files}`);
  }
  assert.ok(!files.includes('.git'), files);
  await page.waitForSelector('#scan-done', { timeout: 30000 });
  const dropped = { codes: await findingCodes(page), summary: await page.textContent('#summary') };
  assert.ok(!dropped.codes.includes('ST_SHARD_MISSING'), dropped.codes.join());
  assert.equal(await page.locator('#error').count(), 0);

  // The same folder through the folder picker: the same report.
  await page.setInputFiles('#folder-input', ckpt);
  await page.waitForFunction(() => !document.querySelector('#summary')?.textContent.includes('models/'));
  await page.waitForSelector('#scan-done', { timeout: 30000 });
  assert.deepEqual(await findingCodes(page), dropped.codes);
  const norm = (t, prefix) => t.replaceAll(prefix, '').replace(/Header read in\d+ ms/, '');
  assert.equal(norm(await page.textContent('#summary'), 'ckpt/'), norm(dropped.summary, 'models/ckpt/'));
  assert.deepEqual(foreign(requests), []);
  assert.deepEqual(errors, []);
  await context.close();
});

test('a dropped folder with more entries than the app reads stops with a message', async () => {
  // 20,001 files, one past the limit in web/src/dropped.rs (MAX_ENTRIES).
  const root = join(work, 'crowded');
  mkdirSync(root, { recursive: true });
  for (let i = 0; i <= 20000; i++) writeFileSync(join(root, `f${i}.txt`), '');
  const { context, page, errors } = await openPage(browser);
  await page.waitForSelector('#drop');
  await dragFromDisk(page, '#drop', [root]);
  await page.waitForSelector('#error', { timeout: 120000 });
  assert.match(await page.textContent('#error'), /more than 20000 entries/);
  assert.equal(await page.locator('#summary').count(), 0);
  assert.deepEqual(errors, []);
  await context.close();
  rmSync(root, { recursive: true, force: true });
});

/// The native CLI (scripts/web-e2e.sh builds it).
function cli() {
  const target = process.env.CARGO_TARGET_DIR || join(repo, 'target');
  const path = process.env.QUANTDOC_CLI || join(target, 'release', 'quantdoc');
  if (!existsSync(path)) throw new Error(`${path} not found: scripts/web-e2e.sh builds it`);
  return path;
}

test('links made by the CLI match the web app\'s own scan (native and wasm hash alike)', async () => {
  for (const name of ['gguf/kquants.gguf', 'gguf/iquants.gguf']) {
    const file = join(fixtures, name);
    const url = execFileSync(cli(), ['link', file, '--base-url', `${origin}/`], { encoding: 'utf8' }).trim();
    assert.match(url, /#qd1\./);
    const { context, page, errors } = await openPage(browser, '/' + url.slice(url.indexOf('#')));
    await page.waitForSelector('#shared-banner');
    // The link carries content hashes computed natively.
    await page.click('#tensors tbody button.link');
    await page.waitForSelector('#detail-stats');
    assert.match(await page.textContent('#detail-stats'), /content hash[0-9a-f]{32}/);
    // The page scans the same file in wasm: every statistic and hash must agree.
    await drop(page, [file]);
    await page.waitForSelector('#differing', { timeout: 30000 });
    const text = await page.textContent('#differing');
    const m = text.match(/All (\d+) tensors with statistics in the link match/);
    assert.ok(m && Number(m[1]) > 0, `${name}: ${text}`);
    assert.deepEqual(errors, []);
    await context.close();
  }
});

test('scan memory stays bounded for a file larger than the memory budget', async () => {
  // 36 Q8_0 tensors of 17.8 MB: 641 MB, more than the 512 MiB the whole app may use.
  const file = join(work, 'big.gguf');
  makeGguf(file, 36);
  const pid = browserPid(browser);
  const { context, page, errors } = await openPage(browser, '/?threads=2');
  await page.waitForSelector('#file-input', { state: 'attached' });
  await page.waitForTimeout(500);
  const idle = rendererRssKiB(pid);
  await page.setInputFiles('#file-input', file);
  const peak = await peakRendererRssKiB(pid, page.waitForSelector('#scan-done', { timeout: 180000 }));
  const done = page.locator('#scan-done');
  const coordinator = Number(await done.getAttribute('data-coordinator-wasm-bytes'));
  const scanners = (await done.getAttribute('data-scanner-wasm-bytes')).split(',').map(Number);
  const MiB = 1 << 20;
  assert.equal(scanners.length, 2);
  // Each scan worker holds one job's bytes (a few MiB), not a tensor or a span of them.
  for (const w of scanners) assert.ok(w > 0 && w < 24 * MiB, `scan worker wasm memory ${w / MiB} MiB`);
  assert.ok(coordinator < 24 * MiB, `coordinator wasm memory ${coordinator / MiB} MiB`);
  if (idle !== null) {
    // Everything the scan adds to the renderer (workers, their JS heaps, stream buffers).
    const grew = (peak - idle) / 1024;
    console.log(`renderer RSS: idle ${Math.round(idle / 1024)} MiB, peak ${Math.round(peak / 1024)} MiB, +${Math.round(grew)} MiB during the scan`);
    assert.ok(grew < 256, `the renderer grew by ${grew} MiB during the scan`);
  }
  assert.deepEqual(errors, []);
  await context.close();
  rmSync(file, { force: true });
});
