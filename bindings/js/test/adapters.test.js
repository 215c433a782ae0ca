// The adapters against the reference server, one behaviour at a time: a storm joins one
// refresh and every request is replayed; a stream is not replayable; insufficient_scope
// and refresh opt-outs are the caller's answer; an abort, a close, a refused refresh,
// a restore from the store; the steady state crosses into wasm twice per request; an
// idle session does not keep Node alive.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import axios from 'axios';
import { Session, MemoryStore, RequestFailedError, ClosedError } from '../src/index.js';
import { attach } from '../src/axios.js';
import { reauthFetch } from '../src/fetch.js';
import { native } from '../src/instance.js';
import { startServer } from './server.js';
import { PACKAGE } from './paths.js';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

async function session(options = {}) {
  const s = new Session({
    tokenEndpoint: { url: server.tokenUrl, clientId: 'test' },
    credentials: options.credentials === undefined ? await server.login() : options.credentials,
    logger: {},
    ...options.extra,
  });
  await s.ready;
  return s;
}

async function delta(run) {
  const before = await server.stats();
  const value = await run();
  const after = await server.stats();
  const d = {};
  for (const k of Object.keys(after)) d[k] = after[k] - before[k];
  return [d, value];
}

for (const adapter of ['axios', 'fetch']) {
  const client = (s) => {
    if (adapter === 'axios') {
      const api = attach(axios.create({ baseURL: server.url }), s);
      return async (path, config = {}) => (await api.request({ url: path, ...config })).status;
    }
    const f = reauthFetch(s);
    return async (path, config = {}) => {
      const r = await f(`${server.url}${path}`, config);
      await r.arrayBuffer();
      return r.status;
    };
  };

  test(`${adapter}: a 401 storm joins one refresh and replays every request`, async () => {
    const s = await session();
    const call = client(s);
    assert.equal(await call('/api/warm'), 200);
    await server.revokeAccess();
    const [d, statuses] = await delta(() => Promise.all(Array.from({ length: 64 }, (_, i) => call(`/api/storm/${i}`))));
    assert.deepEqual(new Set(statuses), new Set([200]));
    assert.equal(d.refresh_calls, 1, 'one refresh for the whole storm');
    assert.equal(d.rotations, 1);
    assert.equal(d.served, 64);
    const stats = s.stats();
    assert.equal(stats.refresh_cycles, 1);
    assert.ok(stats.replayed >= 1);
    s.close();
  });

  test(`${adapter}: insufficient_scope is the caller's answer, never a refresh`, async () => {
    const s = new Session({
      tokenEndpoint: { url: server.tokenUrl, clientId: 'test' },
      credentials: await server.login(),
      config: { refreshStatuses: [401, 403] },
      logger: {},
    });
    const call = client(s);
    const [d, status] = await delta(() => call('/api/scoped/admin').catch((e) => e.response?.status ?? e));
    assert.equal(status, 403);
    assert.equal(d.refresh_calls, 0);
    assert.equal(s.stats().cancelled, 1, 'ended as the caller\'s answer');
    s.close();
  });

  test(`${adapter}: a request with refresh: false gets its 401, the session is untouched`, async () => {
    const s = await session();
    const call = client(s);
    await server.revokeAccess();
    const options = adapter === 'axios' ? { reauth: { refresh: false } } : { reauth: { refresh: false } };
    const [d, status] = await delta(() => call('/api/public', options).catch((e) => e.response?.status ?? e));
    assert.equal(status, 401);
    assert.equal(d.refresh_calls, 0);
    s.close();
  });

  test(`${adapter}: a streamed body is not replayed: its caller gets the 401`, async () => {
    const s = await session();
    const call = client(s);
    assert.equal(await call('/api/warm'), 200);
    await server.revokeAccess();
    const body = adapter === 'axios'
      ? Readable.from(['{"a":', '1}'])
      : new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('{"a":1}')); c.close(); } });
    const config = adapter === 'axios' ? { method: 'POST', data: body } : { method: 'POST', body, duplex: 'half' };
    const [d, status] = await delta(() => call('/api/upload', config).catch((e) => e.response?.status ?? e.code ?? e));
    // The server answers 401 without reading the body: the caller gets that 401, or (when
    // the server closes the connection first) the transport error — never a replay.
    assert.ok(status === 401 || status === 'ECONNRESET', String(status));
    assert.equal(d.unauthorized, 1, 'sent once, not replayed');
    // A replayable request afterwards refreshes and succeeds.
    assert.equal(await call('/api/after'), 200);
    s.close();
  });

  test(`${adapter}: an abort while waiting for a refresh ends that request only`, async () => {
    const s = new Session({
      tokenEndpoint: { url: server.tokenUrl, clientId: 'test' },
      credentials: await server.login(),
      logger: {},
      fetch: async (url, init) => {
        await new Promise((r) => setTimeout(r, 300)); // a slow token endpoint
        return fetch(url, init);
      },
    });
    const call = client(s);
    s.forceRefresh();
    const controller = new AbortController();
    const aborted = call('/api/a', { signal: controller.signal }).then(() => 'answered', (e) => e.name ?? e.code);
    const other = call('/api/b');
    setTimeout(() => controller.abort(), 50);
    assert.match(await aborted, /Abort|CanceledError/);
    assert.equal(await other, 200);
    assert.equal(s.stats().cancelled, 1);
    s.close();
  });

  test(`${adapter}: a refused refresh fails the waiting requests and logs out once`, async () => {
    const logouts = [];
    const store = new MemoryStore();
    const s = new Session({
      tokenEndpoint: { url: server.tokenUrl, clientId: 'test' },
      credentials: await server.login(),
      store,
      logger: {},
      onLogout: (reason, recording) => logouts.push([reason, recording]),
    });
    await s.ready;
    const call = client(s);
    assert.equal(await call('/api/warm'), 200);
    await fetch(`${server.url}/admin/revoke`, { method: 'POST' });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => call(`/api/x/${i}`).then(() => 'answered', (e) => e)));
    for (const e of results) {
      assert.ok(e instanceof RequestFailedError, String(e));
      assert.ok(['refresh_rejected', 'logged_out'].includes(e.reason), e.reason);
    }
    assert.equal(logouts.length, 1);
    assert.equal(logouts[0][0], 'refresh_rejected');
    assert.ok(logouts[0][1].steps > 0, 'the logout carries its flight recording');
    assert.equal(await store.load(), null, 'the store was cleared');
    const after = await call('/api/later').then(() => 'answered', (e) => e.reason);
    assert.equal(after, 'not_logged_in');
    s.close();
  });

  test(`${adapter}: close() ends waiting requests and refuses later ones`, async () => {
    const s = new Session({
      tokenEndpoint: { url: server.tokenUrl, clientId: 'test' },
      credentials: await server.login(),
      logger: {},
      fetch: () => new Promise(() => {}), // a token endpoint that never answers
    });
    const call = client(s);
    s.forceRefresh();
    const waiting = call('/api/w').then(() => 'answered', (e) => e);
    await new Promise((r) => setTimeout(r, 20));
    s.close();
    assert.ok((await waiting) instanceof ClosedError);
    assert.ok((await call('/api/x').then(() => 'answered', (e) => e)) instanceof ClosedError);
  });
}

test('a session restored from its store: requests wait for the read, then go out', async () => {
  const credentials = await server.login();
  let release;
  const gate = new Promise((r) => {
    release = r;
  });
  const memory = new MemoryStore();
  memory.save({ accessToken: credentials.accessToken, refreshToken: credentials.refreshToken, expiresAt: Date.now() + 60_000 });
  const slow = { load: async () => (await gate, memory.load()), save: (r) => memory.save(r), clear: () => memory.clear(), lock: (fn) => memory.lock(fn) };
  const s = new Session({ tokenEndpoint: { url: server.tokenUrl, clientId: 'test' }, store: slow, logger: {} });
  const f = reauthFetch(s);
  const pending = f(`${server.url}/api/early`).then((r) => r.status);
  setTimeout(release, 50);
  assert.equal(await pending, 200);
  assert.equal(s.isLoggedIn(), true);
  s.close();
  // An empty store: the early request fails not_logged_in, no logout.
  const empty = new Session({ tokenEndpoint: { url: server.tokenUrl, clientId: 'test' }, logger: {}, onLogout: () => assert.fail('no logout') });
  const e = await reauthFetch(empty)(`${server.url}/api/x`).catch((err) => err);
  assert.equal(e.reason, 'not_logged_in');
  empty.close();
});

test('the steady state crosses into wasm twice per request and writes no strings', async () => {
  const s = await session();
  const api = attach(axios.create({ baseURL: server.url }), s);
  const f = reauthFetch(s);
  await api.get('/api/warm');
  await f(`${server.url}/api/warm`).then((r) => r.arrayBuffer());
  const call = native.call;
  const put = native.put;
  let calls = 0;
  let puts = 0;
  native.call = function (...args) {
    calls++;
    return call.apply(this, args);
  };
  native.put = function (...args) {
    puts++;
    return put.apply(this, args);
  };
  try {
    for (let i = 0; i < 50; i++) await api.get('/api/warm');
    assert.equal(calls, 100, 'axios: submit + response');
    calls = 0;
    for (let i = 0; i < 50; i++) await f(`${server.url}/api/warm`).then((r) => r.arrayBuffer());
    assert.equal(calls, 100, 'fetch: submit + response');
    assert.equal(puts, 0, 'no string crosses in the steady state');
  } finally {
    native.call = call;
    native.put = put;
  }
  s.close();
});

test('an idle session does not keep Node alive; a waiting request does', () => {
  const script = `
    import { Session } from './src/index.js';
    const s = new Session({ tokenEndpoint: { url: 'http://127.0.0.1:9/t', clientId: 'c' },
      credentials: { accessToken: 'a', refreshToken: 'r', expiresInMs: 3_600_000 }, logger: {} });
    s.submit({}); // sent at once; the timer is for the expiry an hour away
  `;
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: PACKAGE, encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(Date.now() - started < 5000, 'exited without waiting for the timer');
  // A request waiting for a refresh that never answers: only the timer can end its wait
  // (max_wait_ms, rule 15), so the timer must hold the process until then.
  const waiting = `
    import { Session } from './src/index.js';
    import { reauthFetch } from './src/fetch.js';
    const s = new Session({ tokenEndpoint: { url: 'http://127.0.0.1:9/t', clientId: 'c' },
      credentials: { accessToken: 'a', refreshToken: 'r', expiresInMs: 3_600_000 }, logger: {},
      config: { maxWaitMs: 300 }, fetch: () => new Promise(() => {}) });
    s.forceRefresh();
    console.log(await reauthFetch(s)('http://127.0.0.1:9/api').catch((e) => e.reason));
  `;
  const w = spawnSync(process.execPath, ['--input-type=module', '-e', waiting], { cwd: PACKAGE, encoding: 'utf8', timeout: 10_000 });
  assert.equal(w.stdout.trim(), 'wait_timeout', w.stderr);
  assert.equal(w.status, 0);
});

test('the default fetch is called as a plain function (a browser refuses any other this)', async () => {
  const real = globalThis.fetch;
  globalThis.fetch = function (input, init) {
    if (this !== undefined && this !== globalThis) throw new TypeError("Failed to execute 'fetch' on 'Window': Illegal invocation");
    return real(input, init);
  };
  try {
    const s = new Session({ tokenEndpoint: { url: server.tokenUrl, clientId: 'test' }, credentials: await server.login(), logger: {} });
    s.forceRefresh();
    const [d, status] = await delta(async () => (await reauthFetch(s)(`${server.url}/api/x`)).status);
    assert.equal(status, 200);
    assert.equal(d.rotations, 1);
    s.close();
  } finally {
    globalThis.fetch = real;
  }
});
