// End-to-end tests of the web app in headless Chromium. Expects the app served on
// QUANTDOC_E2E_PORT (scripts/web-e2e.sh builds, serves and runs this).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, openPage, foreign, fixtures, shots } from './lib.mjs';

const manifest = JSON.parse(readFileSync(join(fixtures, 'MANIFEST.json'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'quantdoc-e2e-files-'));
let browser;

before(async () => {
  mkdirSync(shots, { recursive: true });
  browser = await launch();
});
after(async () => { await browser?.close(); });

/// Drop files on the drop zone the way a user's drag does: a DataTransfer with Files.
async function drop(page, paths) {
  const files = paths.map((p) => ({ name: p.split('/').pop(), b64: readFileSync(p).toString('base64') }));
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
  const { context, page } = await openPage(browser, '/?threads=1');
  await page.waitForSelector('#drop');
  // Tab to the file picker label and beyond without a mouse.
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName);
  assert.ok(first, 'something takes focus');
  await drop(page, [join(fixtures, 'gguf/kquants.gguf')]);
  await page.waitForSelector('#scan-done, #scan-cancel', { timeout: 30000 });
  if (await page.locator('#scan-cancel').count()) {
    await page.click('#scan-cancel');
    await page.waitForSelector('#scan-cancelled, #scan-done');
  }
  await page.focus('#tensor-filter');
  await page.keyboard.type('blk.0');
  await page.keyboard.press('Tab'); // type filter
  await page.keyboard.press('Tab'); // "#" header
  await page.keyboard.press('Tab'); // "Name" header
  await page.keyboard.press('Enter');
  assert.match(await page.textContent('#tensors thead'), /Name ▲/);
  // Open a tensor from the table by keyboard: focus lands on its detail.
  await page.focus('#tensors tbody button.link');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#detail');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'detail-h');
  await context.close();
});
