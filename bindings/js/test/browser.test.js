// reauth in a real browser (issue 25): the package as Chromium loads it (ES modules, the
// wasm from dist/) in two tabs of one origin (test/browser/page.html), against a strict
// reference server (grace 0: any reuse of a refresh token revokes the family) of another
// origin (--cors-origin). The tests:
// - two tabs share one session — tab 1 logs in, tab 2 restores from the store — through a
//   record in IndexedDB under one Web Lock (sharedAcrossTabs): every request answered, no
//   refresh token presented twice, the rotations shared;
// - sharedAcrossTabs refuses localStorage, which Chromium caches per tab process (a tab
//   under the lock could read a record another tab replaced: reuse in about half the runs
//   when it was allowed);
// - the Sessions use the default fetch (the window's, called as a plain function);
// - a negative control: two tabs with stores of their own and the same credentials make
//   the strict server detect a reuse, so the first test can fail.
//
// Needs dist/ (./build.sh), the server (cargo build --release -p reauth-testserver) and
// Chromium: CHROMIUM, else /usr/bin/chromium. Without Chromium the tests are skipped,
// unless REAUTH_REQUIRE_BROWSER=1 (then they fail).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const REQUIRED = process.env.REAUTH_REQUIRE_BROWSER === '1';
const LOOPS = 16;
const DURATION_MS = 6_000;
const STRICT = ['--access-ttl-ms', '1500', '--grace-ms', '0'];

let puppeteer = null;
let missing = null;
if (!existsSync(CHROMIUM)) {
  missing = `Chromium not found at ${CHROMIUM} (set CHROMIUM to its path)`;
} else {
  try {
    puppeteer = (await import('puppeteer-core')).default;
  } catch (e) {
    missing = `puppeteer-core is not installed (${e?.message}): npm install`;
  }
}
if (missing !== null && !REQUIRED) {
  console.log(`browser tests skipped: ${missing}; REAUTH_REQUIRE_BROWSER=1 makes this a failure`);
}

// ----- the page's origin: a static server of src/, dist/ and test/browser/ -------------------

const SERVED = ['src', 'dist', join('test', 'browser')].map((dir) => join(ROOT, dir) + sep);
const TYPES = {
  '.js': 'text/javascript; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
};

function startStatic() {
  const server = createServer(async (req, res) => {
    let path;
    try {
      path = normalize(join(ROOT, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
    } catch {
      path = null;
    }
    if (path === null || (req.method !== 'GET' && req.method !== 'HEAD') || !SERVED.some((dir) => path.startsWith(dir))) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(path);
      res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function closeServer(server) {
  return new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

// ----- the browser -------------------------------------------------------------------------------

/** A tab with the page loaded and window.harness ready; its errors are collected. */
async function openTab(browser, pageUrl) {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.url().startsWith(new URL(pageUrl).origin) && r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(pageUrl);
  try {
    await page.waitForFunction(() => window.harness !== undefined, { timeout: 10_000 });
  } catch (e) {
    throw new Error(`the page did not load: ${e.message}\n${problems.join('\n')}`);
  }
  page.problems = problems;
  return page;
}

/** Runs both tabs' loops at once. */
function runBoth(tabs, api, durationMs) {
  return Promise.all(
    tabs.map((page, i) =>
      page.evaluate((o) => window.harness.run(o), { api, tab: `tab${i + 1}`, loops: LOOPS, durationMs }),
    ),
  );
}

function summary(name, r) {
  const s = r.stats;
  return (
    `${name}: ${r.ok} answered, ${r.failed} failed ${JSON.stringify(r.failures)} in ${r.ms} ms; ` +
    `refresh attempts ${s.refresh_attempts} (cycles ${s.refresh_cycles}, succeeded ${s.refresh_succeeded}, ` +
    `rejected ${s.refresh_rejected}, transient ${s.refresh_transient}), token endpoint calls ${r.tokenCalls}, ` +
    `adoptions ${r.adoptions}, 401s ${s.unauthorized_responses}, replayed ${s.replayed}, logouts ${JSON.stringify(r.logouts)}, ` +
    `${r.visibility}`
  );
}

function serverSummary(s) {
  return (
    `server: ${s.served} served, ${s.unauthorized} 401s, ${s.logins} logins, ${s.refresh_calls} refresh calls, ` +
    `${s.rotations} rotations, ${s.grace_replays} grace replays, ${s.refresh_rejections} rejections, ` +
    `${s.reuse_detections} reuse detections, ${s.families_revoked} families revoked`
  );
}

describe('in a real browser', { skip: missing !== null && !REQUIRED ? missing : false }, () => {
  let browser = null;
  let pageOrigin = null;
  let staticServer = null;
  const servers = [];

  before(async () => {
    if (missing !== null) throw new Error(`REAUTH_REQUIRE_BROWSER=1: ${missing}`);
    if (!existsSync(join(ROOT, 'dist', 'reauth-wasm.js'))) throw new Error('dist/ is missing: ./build.sh');
    staticServer = await startStatic();
    pageOrigin = `http://127.0.0.1:${staticServer.address().port}`;
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--headless=new'],
    });
  });

  after(async () => {
    await browser?.close();
    await Promise.all(servers.map((s) => s.stop()));
    if (staticServer !== null) await closeServer(staticServer);
  });

  /** A strict reference server answering CORS for the page's origin. */
  async function strictServer() {
    const server = await startServer([...STRICT, '--cors-origin', pageOrigin]);
    servers.push(server);
    return server;
  }

  async function twoTabs() {
    const pageUrl = `${pageOrigin}/test/browser/page.html`;
    const tabs = [await openTab(browser, pageUrl), await openTab(browser, pageUrl)];
    return tabs;
  }

  /**
   * Two tabs, one session through `storeKind` under the Web Lock: tab 1 logs in, tab 2
   * restores; both run their loops; the strict server must see no reuse.
   */
  async function sharedSession(t, storeKind) {
    const server = await strictServer();
    const tabs = await twoTabs();
    try {
      const credentials = await server.login();
      const one = await tabs[0].evaluate((o) => window.harness.start(o), { tokenEndpoint: server.tokenUrl, credentials, storeKind, clear: true });
      assert.deepEqual([one.loggedIn, one.stored], [true, true], 'tab 1 logged in and stored the credentials');
      // Tab 2 has no credentials: it restores what tab 1 stored.
      const two = await tabs[1].evaluate((o) => window.harness.start(o), { tokenEndpoint: server.tokenUrl, storeKind });
      assert.equal(two.loggedIn, true, 'tab 2 restored the session from the store');

      const started = Date.now();
      const [r1, r2] = await runBoth(tabs, server.url, DURATION_MS);
      const ms = Date.now() - started;
      const s = await server.stats();
      const report = [summary('tab 1', r1), summary('tab 2', r2), serverSummary(s), `${ms} ms`];
      for (const line of report) t.diagnostic(line);
      const details = () =>
        [...report, ...r1.log.map((l) => `tab 1 ${l}`), ...r2.log.map((l) => `tab 2 ${l}`), ...tabs.flatMap((p) => p.problems)].join('\n');

      assert.equal(s.reuse_detections, 0, `no refresh token presented twice\n${details()}`);
      assert.equal(s.families_revoked, 0, details());
      assert.equal(s.refresh_rejections, 0, details());
      for (const [name, r] of [['tab 1', r1], ['tab 2', r2]]) {
        assert.ok(r.ok > 0, `${name} answered requests\n${details()}`);
        assert.equal(r.failed, 0, `${name} lost no request\n${details()}`);
        assert.ok(r.loggedIn, `${name} stayed logged in\n${details()}`);
        assert.ok(r.stats.refresh_attempts > 0, `${name} refreshed or adopted\n${details()}`);
        assert.equal(r.stats.refresh_rejected, 0, details());
      }
      assert.equal(s.served, r1.ok + r2.ok, `every 200 the server sent was a request answered\n${details()}`);
      assert.ok(s.rotations >= 3, `tokens of 1.5 s over ${DURATION_MS} ms: several rotations\n${details()}`);
      assert.equal(s.logins, 1, 'one login, shared');
    } finally {
      await Promise.all(tabs.map((p) => p.close()));
    }
  }

  test('two tabs share one session (IndexedDB under a Web Lock): every request answered, no refresh token reused', { timeout: 30_000 }, (t) =>
    sharedSession(t, 'indexedDB'),
  );

  test('sharedAcrossTabs refuses localStorage, which tabs do not read coherently', { timeout: 30_000 }, async () => {
    const page = await openTab(browser, `${pageOrigin}/test/browser/page.html`);
    try {
      const error = await page.evaluate((o) => window.harness.start(o).then(() => 'accepted', (e) => e.message), { tokenEndpoint: 'http://127.0.0.1:9/token', storeKind: 'localStorage' });
      assert.match(error, /use IndexedDbStore/);
    } finally {
      await page.close();
    }
  });

  test('negative control: two tabs with stores of their own reuse a refresh token on the strict server', { timeout: 30_000 }, async (t) => {
    const server = await strictServer();
    const tabs = await twoTabs();
    try {
      const credentials = await server.login();
      // The same credentials in both tabs, each in a MemoryStore: no shared record, no shared lock.
      for (const page of tabs) {
        const started = await page.evaluate((o) => window.harness.start(o), { tokenEndpoint: server.tokenUrl, credentials, storeKind: 'memory' });
        assert.equal(started.loggedIn, true);
      }
      const [r1, r2] = await runBoth(tabs, server.url, 4_000);
      const s = await server.stats();
      for (const line of [summary('tab 1', r1), summary('tab 2', r2), serverSummary(s)]) t.diagnostic(line);
      assert.ok(s.reuse_detections > 0 || s.refresh_rejections > 0, `without the shared lock the strict server sees a reuse\n${serverSummary(s)}`);
      assert.ok(r1.failed + r2.failed > 0, 'and requests are lost');
    } finally {
      await Promise.all(tabs.map((p) => p.close()));
    }
  });
});
