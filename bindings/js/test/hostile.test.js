// What a hostile or careless host does to a session, each a regression test of a defect
// found by attacking the package: interleaved wasm calls during a login, a logout during
// a refresh, a store that refuses a save or holds garbage, a restore that lands after a
// login, a logger that throws, a fetch that never answers, oversized arguments, freed
// handles, requests abandoned while waiting, a response after close(), axios
// interceptors that throw, and two processes taking over a dead file lock at once.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { mkdtempSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import axios from 'axios';
import { Session, Coordinator, MemoryStore, Token, readTokenResponse, ReauthError } from '../src/index.js';
import { attach } from '../src/axios.js';
import { reauthFetch } from '../src/fetch.js';
import { FileStore } from '../src/node.js';
import { startServer } from './server.js';

let server;
before(async () => {
  server = await startServer(['--grace-ms', '0']); // strict: any reuse revokes the family
});
after(async () => {
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function gate() {
  let open;
  const promise = new Promise((r) => (open = r));
  return { promise, open };
}

function sessionOn(store, extra = {}) {
  return new Session({ tokenEndpoint: { url: server.tokenUrl, clientId: 'test' }, store, logger: {}, ...extra });
}

test('a login whose save is slow: other calls meanwhile do not corrupt its step', async () => {
  const memory = new MemoryStore();
  const saving = gate();
  let slowSaves = false;
  const store = {
    load: () => memory.load(),
    save: async (r) => {
      if (slowSaves) await saving.promise;
      memory.save(r);
    },
    clear: () => memory.clear(),
    lock: (fn) => memory.lock(fn),
  };
  const s = sessionOn(store);
  await s.ready;
  const f = reauthFetch(s);
  // Restored nothing: a request now fails; log in with a slow save, and call in meanwhile.
  slowSaves = true;
  const login = s.login(await server.login());
  await sleep(20);
  for (let i = 0; i < 5; i++) s.stats();
  saving.open();
  await login;
  assert.equal((await f(`${server.url}/api/after`)).status, 200);
  s.close();
});

test('a logout during a refresh: the refresh does not write the store back', async () => {
  const store = new MemoryStore();
  const answering = gate();
  const s = sessionOn(store, {
    credentials: await server.login(),
    fetch: async (url, init) => {
      await answering.promise; // the refresh is in flight while the user logs out
      return fetch(url, init);
    },
  });
  await s.ready;
  s.forceRefresh();
  const waiting = reauthFetch(s)(`${server.url}/api/x`).catch((e) => e.reason);
  await sleep(20);
  s.logout();
  answering.open();
  assert.equal(await waiting, 'logged_out');
  await sleep(100);
  assert.equal(await store.load(), null, 'the store stays cleared');
  s.close();
});

test('a save that fails after a refresh: the next refresh presents the rotated token', async () => {
  const memory = new MemoryStore();
  let saves = 0;
  const store = {
    load: () => memory.load(),
    save: (r) => {
      saves++;
      if (saves === 2) throw new Error('disk full'); // the first refresh's save
      memory.save(r);
    },
    clear: () => memory.clear(),
    lock: (fn) => memory.lock(fn),
  };
  const logouts = [];
  const s = sessionOn(store, { credentials: await server.login(), onLogout: (r) => logouts.push(r) });
  await s.ready;
  const f = reauthFetch(s);
  s.forceRefresh();
  assert.equal((await f(`${server.url}/api/1`)).status, 200);
  s.forceRefresh();
  assert.equal((await f(`${server.url}/api/2`)).status, 200, 'the second refresh used the unsaved rotation');
  assert.deepEqual(logouts, []);
  const stats = await server.stats();
  assert.equal(stats.reuse_detections, 0);
  assert.equal(memory.load().refreshToken !== null, true, 'the store caught up');
  s.close();
});

test('a restore that lands after an explicit login does not replace it', async () => {
  const old = await server.login();
  const fresh = await server.login();
  const memory = new MemoryStore();
  memory.save({ accessToken: old.accessToken, refreshToken: old.refreshToken, expiresAt: Date.now() + 60_000 });
  const reading = gate();
  const store = { load: async () => (await reading.promise, memory.load()), save: (r) => memory.save(r), clear: () => memory.clear(), lock: (fn) => memory.lock(fn) };
  const s = sessionOn(store);
  await s.login(fresh);
  reading.open();
  await s.ready;
  const seen = [];
  const f = reauthFetch(s, { fetch: async (req) => (seen.push(req.headers.get('authorization')), fetch(req)) });
  await f(`${server.url}/api/x`).then((r) => r.arrayBuffer());
  assert.deepEqual(seen, [`Bearer ${fresh.accessToken}`]);
  s.close();
});

test('a logger that throws changes nothing', async () => {
  const boom = () => {
    throw new Error('logger down');
  };
  const logouts = [];
  const s = new Session({
    tokenEndpoint: { url: server.tokenUrl, clientId: 'test' },
    credentials: await server.login(),
    logger: { debug: boom, info: boom, warn: boom, error: boom },
    onLogout: (r) => logouts.push(r),
  });
  await s.ready;
  const f = reauthFetch(s);
  s.forceRefresh();
  assert.equal((await f(`${server.url}/api/a`)).status, 200);
  await fetch(`${server.url}/admin/revoke`, { method: 'POST' });
  s.forceRefresh();
  const waiting = await Promise.all([1, 2, 3].map((i) => f(`${server.url}/api/${i}`).catch((e) => e.reason)));
  assert.deepEqual(waiting, ['refresh_rejected', 'refresh_rejected', 'refresh_rejected']);
  assert.deepEqual(logouts, ['refresh_rejected']);
  s.close();
});

test('a fetch that never answers: the attempt ends at the refresh deadline and the next one works', async () => {
  let calls = 0;
  const s = sessionOn(new MemoryStore(), {
    credentials: await server.login(),
    config: { refreshTimeoutMs: 300, initialBackoffMs: 10 },
    fetch: (url, init) => (++calls === 1 ? new Promise(() => {}) : fetch(url, init)),
  });
  s.forceRefresh();
  const started = Date.now();
  assert.equal((await reauthFetch(s)(`${server.url}/api/x`)).status, 200);
  assert.equal(calls, 2);
  assert.ok(Date.now() - started < 3000);
  s.close();
});

test('a store holding credentials the core refuses: the attempt fails at once, not at its deadline', async () => {
  const memory = new MemoryStore();
  const s = sessionOn({ load: () => memory.load(), save: (r) => memory.save(r), clear: () => memory.clear(), lock: (fn) => memory.lock(fn) }, {
    credentials: await server.login(),
    config: { maxRetries: 1, initialBackoffMs: 10, refreshTimeoutMs: 20_000 },
  });
  await s.ready;
  memory.save({ accessToken: 'bad token', refreshToken: 'rt-someone-else', expiresAt: Date.now() + 60_000 });
  s.forceRefresh();
  const started = Date.now();
  const reason = await reauthFetch(s)(`${server.url}/api/x`).then((r) => r.status, (e) => e.reason);
  assert.ok(Date.now() - started < 5000, `ended in ${Date.now() - started} ms`);
  assert.equal(reason, 'refresh_unavailable');
  s.close();
});

test('a store whose lock returns a plain value, or throws, is still a store', async () => {
  const memory = new MemoryStore();
  const plain = { load: () => memory.load(), save: (r) => memory.save(r), clear: () => memory.clear(), lock: (fn) => void fn() };
  const s = sessionOn(plain, { credentials: await server.login() });
  await s.ready;
  s.close();
  const throwing = { ...plain, lock: () => { throw new Error('no lock'); } };
  const t = sessionOn(throwing, { credentials: await server.login() });
  await t.ready; // logged, not thrown
  t.close();
});

test('oversized arguments are refused before they cross, and the module keeps working', () => {
  const huge = 'x'.repeat(30 * 1024 * 1024);
  assert.throws(() => readTokenResponse(200, null, '{}', huge), RangeError);
  const core = new Coordinator();
  assert.deepEqual(core.login(0, { accessToken: 'at' }), []);
});

test('a freed coordinator refuses every call; a second free is harmless', () => {
  const victim = new Coordinator();
  victim.login(0, { accessToken: 'victim-at' });
  const freed = new Coordinator();
  freed.free();
  const other = new Coordinator(); // may reuse the freed slot
  assert.throws(() => freed.submit(1), TypeError);
  freed.free();
  assert.equal(victim.submit(1).commands[0].type, 'send');
  assert.doesNotThrow(() => other.pollTimeout());
});

test('a request abandoned while it waits settles; events carry tokens that never print', async () => {
  const s = sessionOn(new MemoryStore(), { credentials: await server.login(), fetch: () => new Promise(() => {}) });
  const first = s.submit({});
  assert.equal(first.next.kind, 'send');
  assert.ok(first.next.token instanceof Token);
  assert.ok(!inspect(first.next).includes(first.next.token.expose()));
  assert.throws(() => s.response(1.5, 200), TypeError);
  s.forceRefresh();
  const { id, next } = s.submit({});
  assert.ok(next instanceof Promise);
  s.abandon(id);
  assert.deepEqual(await next, { kind: 'abandoned' });
  s.close();
});

test('a response that arrives after close() is still the caller\'s', async () => {
  const s = sessionOn(new MemoryStore(), { credentials: await server.login() });
  const f = reauthFetch(s, { fetch: async (req) => { s.close(); return fetch(req); } });
  assert.equal((await f(`${server.url}/api/x`)).status, 200);
  const t = sessionOn(new MemoryStore(), { credentials: await server.login() });
  const api = attach(axios.create({ baseURL: server.url }), t);
  api.interceptors.response.use((r) => r); // a user's interceptor too
  const adapterCloses = { adapter: async (config) => { t.close(); return axios.getAdapter(['http'])(config); } };
  assert.equal((await api.get('/api/x', adapterCloses)).status, 200);
});

test('axios: an interceptor or adapter that throws leaves nothing open in the session', async () => {
  const s = sessionOn(new MemoryStore(), { credentials: await server.login() });
  const api = attach(axios.create({ baseURL: server.url }), s);
  // Registered after attach(): runs before reauth's request interceptor (axios runs them last-in first).
  const id = api.interceptors.request.use((config) => {
    if (config.url === '/api/throw') throw new Error('interceptor');
    return config;
  });
  await assert.rejects(api.get('/api/throw'), /interceptor/);
  await assert.rejects(api.get('/api/x', { adapter: () => { throw new Error('adapter'); } }), /adapter/);
  const f = reauthFetch(s, { fetch: async () => null });
  await assert.rejects(f(`${server.url}/api/x`), /did not return a Response/);
  api.interceptors.request.eject(id);
  assert.equal((await api.get('/api/ok')).status, 200);
  native_open(s);
  s.close();
});

function native_open(s) {
  // Every request above ended: none is left open (the core's open count is 0).
  const stats = s.stats();
  const ended = stats.completed + stats.cancelled + Object.values(stats.failed).reduce((a, b) => a + b, 0);
  assert.equal(stats.submitted, ended, JSON.stringify(stats));
}

test('two processes taking over a dead lock file at once: one holder at a time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'reauth-takeover-'));
  const path = join(dir, 'credentials.json');
  let overlaps = 0;
  for (let trial = 0; trial < 150; trial++) {
    writeFileSync(`${path}.lock`, 'dead 1');
    const old = (Date.now() - 120_000) / 1000;
    utimesSync(`${path}.lock`, old, old);
    let holders = 0;
    const hold = (store) =>
      store.lock(async () => {
        holders++;
        if (holders > 1) overlaps++;
        await sleep(5);
        holders--;
      });
    await Promise.all([0, 1, 2].map(() => hold(new FileStore(path, { lockTtlMs: 60_000 }))));
  }
  assert.equal(overlaps, 0);
});

test('errors a host sees name no token', () => {
  assert.throws(
    () => new Session({ tokenEndpoint: { url: 'https://a/t', clientId: 'c', clientSecret: 'cs-secret' }, credentials: { accessToken: 'at-secret\n' } }),
    (e) => e instanceof ReauthError && !e.message.includes('secret'),
  );
});

test('a rotation in an unusable answer that the store refuses to keep is kept in memory', async () => {
  const { createServer } = await import('node:http');
  const presented = [];
  const endpoint = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('refresh_token');
      presented.push(token);
      res.setHeader('content-type', 'application/json');
      // First answer: rotated, but its access token is unusable (a space in it).
      if (presented.length === 1) res.end('{"access_token":"bad at","token_type":"Bearer","refresh_token":"rt-2","expires_in":60}');
      else res.end(`{"access_token":"at-3","token_type":"Bearer","refresh_token":"rt-3","expires_in":60}`);
    });
  });
  await new Promise((r) => endpoint.listen(0, '127.0.0.1', r));
  const memory = new MemoryStore();
  let failSaves = false;
  const store = { load: () => memory.load(), save: (r) => { if (failSaves) throw new Error('disk full'); memory.save(r); }, clear: () => memory.clear(), lock: (fn) => memory.lock(fn) };
  const s = new Session({
    tokenEndpoint: { url: `http://127.0.0.1:${endpoint.address().port}/token`, clientId: 'c' },
    credentials: { accessToken: 'at-1', refreshToken: 'rt-1', expiresInMs: 3_600_000 },
    store,
    logger: {},
    config: { initialBackoffMs: 10 },
  });
  await s.ready;
  failSaves = true;
  s.forceRefresh();
  const { next } = s.submit({});
  const event = await next;
  assert.equal(event.kind, 'send');
  assert.equal(event.token.expose(), 'at-3');
  assert.deepEqual(presented, ['rt-1', 'rt-2'], 'the retry presented the rotated token, not the spent one');
  s.close();
  endpoint.close();
});
