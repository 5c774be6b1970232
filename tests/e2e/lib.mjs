// Shared helpers of the browser tests and the benchmark: start Debian's chromium through
// playwright-core (no browser download), open the app, and watch every request.
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, '..', '..');
export const fixtures = process.env.QUANTDOC_FIXTURES || join(repo, '..', 'shared', 'fixtures');
export const port = Number(process.env.QUANTDOC_E2E_PORT || 8091);
export const origin = `http://127.0.0.1:${port}`;
export const shots = join(here, 'screenshots');

export async function launch() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) throw new Error(`${executablePath} not found: run scripts/web-setup.sh`);
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // No --user-data-dir: playwright starts every launch with a fresh temporary profile.
    ],
  });
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
