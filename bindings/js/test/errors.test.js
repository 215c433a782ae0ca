// Bad input gets a clear error and changes nothing — wrong types, NaN, huge numbers, lone
// surrogates, CR/LF in tokens, unknown ids, absurd configs — and no token text reaches a
// string, JSON, util.inspect, an error or a recording.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import {
  Coordinator, Session, Token, MemoryStore, InputError, ConfigError, ReauthError, RequestFailedError,
  readTokenResponse, planRefresh, storedFromLogin, tokenRequest,
} from '../src/index.js';
import { Native } from '../src/native.js';

const SECRET_AT = 'at-very-secret-1';
const SECRET_RT = 'rt-very-secret-1';

function loggedIn() {
  const core = new Coordinator();
  core.login(0, { accessToken: SECRET_AT, refreshToken: SECRET_RT, expiresInMs: 3_600_000 });
  return core;
}

/** Runs `bad` on a logged-in core with one request in flight; the state must not move. */
function unchanged(bad, check) {
  const core = loggedIn();
  const { id } = core.submit(1);
  const before = JSON.stringify(core.state());
  assert.throws(() => bad(core, id), check);
  assert.equal(JSON.stringify(core.state()), before);
  // And it still works: the request completes.
  assert.deepEqual(core.handleResponse(2, id, 200), [{ type: 'complete', id }]);
}

test('wrong types and numbers are refused before they cross', () => {
  for (const now of ['1', NaN, -1, 1.5, Infinity, null, undefined, 10n, {}]) {
    unchanged((c) => c.submit(now), (e) => e instanceof TypeError || e instanceof RangeError);
  }
  unchanged((c, id) => c.handleResponse(2, id, 2 ** 16), RangeError);
  unchanged((c, id) => c.handleResponse(2, id, '200'), TypeError);
  unchanged((c) => c.handleResponse(2, 1.5, 200), TypeError);
  unchanged((c) => c.submit(2, { replayable: 'yes' }), TypeError);
  unchanged((c) => c.submit(2, { route: 0 }), RangeError);
  unchanged((c) => c.submit(2, { route: 2 ** 32 }), RangeError);
  unchanged((c) => c.submit(2, null), TypeError);
  unchanged((c) => c.handleRefreshFailed(2, 1, 'maybe'), TypeError);
  unchanged((c) => c.record(-1), RangeError);
});

test('the core refuses what it refuses, with its message and kind', () => {
  unchanged((c) => c.handleResponse(2, 99, 200), (e) => e instanceof InputError && e.kind === 'unknown_request' && e.message === 'unknown request 99');
  unchanged((c, id) => c.handleResponse(2, id, 99), (e) => e.kind === 'invalid_status');
  unchanged((c) => c.submit(1e300), (e) => e.kind === 'invalid_time' && /past the end of the clock/.test(e.message));
  unchanged((c) => c.submit(2 ** 53), (e) => e.kind === 'invalid_time');
  unchanged((c) => c.handleRefreshSucceeded(2, 7, { accessToken: 'a' }), (e) => e.kind === 'unknown_attempt');
});

test('tokens with CR/LF, spaces, lone surrogates or the wrong type are refused, naming no token', () => {
  const bad = [
    [{ accessToken: `${SECRET_AT}\r\nX-Injected: 1` }, (e) => e instanceof InputError && e.kind === 'invalid_credentials'],
    [{ accessToken: `${SECRET_AT} x` }, (e) => e.kind === 'invalid_credentials'],
    [{ accessToken: '' }, (e) => e.kind === 'invalid_credentials'],
    [{ accessToken: `${SECRET_AT}\ud800` }, TypeError],
    [{ accessToken: SECRET_AT, refreshToken: `${SECRET_RT}\udc00x` }, TypeError],
    [{ accessToken: SECRET_AT, refreshToken: `${SECRET_RT}\n` }, (e) => e.kind === 'invalid_credentials'],
    [{ accessToken: 42 }, TypeError],
    [{ accessToken: SECRET_AT, expiresInMs: -5 }, RangeError],
    [{ accessToken: SECRET_AT, expiresInMs: NaN }, TypeError],
    [{ accessToken: SECRET_AT, extra: 1 }, TypeError],
    [null, TypeError],
  ];
  for (const [credentials, check] of bad) {
    const core = new Coordinator();
    const before = JSON.stringify(core.state());
    assert.throws(() => core.login(0, credentials), (e) => {
      assert.ok(!e.message.includes('very-secret'), e.message);
      return typeof check === 'function' && check.prototype === undefined ? check(e) : e instanceof check;
    });
    assert.equal(JSON.stringify(core.state()), before, 'a refused login changes nothing');
  }
});

test('absurd configs are refused with the field named', () => {
  assert.throws(() => new Coordinator({ maxRetries: 1e9 }), (e) => e instanceof ConfigError && /max_retries must be in 0\.\.=100/.test(e.message));
  assert.throws(() => new Coordinator({ maxRetries: 1e300 }), ConfigError);
  assert.throws(() => new Coordinator({ maxRetries: -1 }), RangeError);
  assert.throws(() => new Coordinator({ maxRetries: '3' }), TypeError);
  assert.throws(() => new Coordinator({ retries: 3 }), /unknown config field "retries"/);
  assert.throws(() => new Coordinator({ refreshStatuses: [200] }), (e) => e instanceof ConfigError && /400\.\.=599/.test(e.message));
  assert.throws(() => new Coordinator({ refreshWindow: { maxRefreshes: 1, every: 2 } }), TypeError);
  assert.throws(() => new Coordinator('{"max_retries": "three"}'), ConfigError);
  assert.throws(() => new Coordinator([]), TypeError);
});

test('a Session refuses bad options and bad credentials, and stores nothing then', async () => {
  const endpoint = { url: 'http://127.0.0.1:9/token', clientId: 'app' };
  const store = new MemoryStore();
  assert.throws(() => new Session({ tokenEndpoint: endpoint, credentials: { accessToken: 'a\nb' }, store }), (e) => e.kind === 'invalid_credentials');
  assert.equal(store.load(), null);
  assert.throws(() => new Session({ tokenEndpoint: endpoint, nonsense: 1 }), /unknown Session option "nonsense"/);
  assert.throws(() => new Session({ tokenEndpoint: { url: 'https://a/token' } }), /clientId must be a string/);
  assert.throws(() => new Session({ tokenEndpoint: { url: 'x', clientId: 'c' } }), /not an absolute URL/);
  assert.throws(() => new Session({ tokenEndpoint: { url: 'javascript:alert(1)', clientId: 'c' } }), /http: or https:/);
  assert.throws(() => new Session({ tokenEndpoint: { ...endpoint, clientSecrett: 's' } }), /unknown tokenEndpoint field "clientSecrett"/);
  assert.throws(() => new Session({ tokenEndpoint: { ...endpoint, auth: 'basic' } }), /needs a clientSecret/);
  assert.throws(() => new Session({ tokenEndpoint: { ...endpoint, clientId: '' } }), /must not be empty/);
  assert.throws(() => new Session({ tokenEndpoint: endpoint, logger: 5 }), /logger must be an object/);
  assert.throws(() => new Session({ tokenEndpoint: endpoint, onLogout: 'no' }), TypeError);
  assert.throws(() => new Session({ tokenEndpoint: endpoint, store: {} }), /has no load\(\)/);
  assert.throws(() => new Session({ tokenEndpoint: endpoint, config: { maxWaitMs: 1e12 } }), ConfigError);
  assert.throws(
    () => new Session({ tokenEndpoint: endpoint, store: Object.assign(new MemoryStore(), { lockTtlMs: 1000 }) }),
    /lockTtlMs \(1000\) must exceed the refresh deadline/,
  );
  const session = new Session({ tokenEndpoint: endpoint, store, logger: {} });
  await session.ready;
  await assert.rejects(session.login({ accessToken: `${SECRET_AT}\r\n` }), (e) => e.kind === 'invalid_credentials' && !e.message.includes('secret'));
  assert.equal(store.load(), null, 'a refused login writes nothing to the store');
  assert.equal(session.isLoggedIn(), false);
  await session.login({ accessToken: SECRET_AT, refreshToken: SECRET_RT });
  assert.equal(store.load().refreshToken, SECRET_RT);
  assert.throws(() => session.submit({ route: -1 }), RangeError);
  assert.throws(() => session.response(1, 'x'), TypeError);
  session.close();
});

test('tokens never print', () => {
  const t = new Token(SECRET_AT);
  for (const shown of [String(t), `${t}`, JSON.stringify({ t }), inspect(t), inspect({ t }, { depth: 5, showHidden: true })]) {
    assert.ok(!shown.includes('secret'), shown);
  }
  assert.deepEqual(Object.keys(t), []);
  assert.equal(t.expose(), SECRET_AT);
  const core = loggedIn();
  const batch = core.submit(1).commands;
  assert.ok(!inspect(batch, { depth: 9 }).includes('secret'));
  assert.ok(!JSON.stringify(batch).includes('secret'));
  core.handleResponse(2, 1, 401);
  core.record(16);
  core.submit(3);
  assert.ok(!JSON.stringify(core.trace()).includes('secret'), 'a recording holds placeholders');
  assert.ok(!core.explain().includes('secret'));
  const answer = readTokenResponse(200, null, `{"access_token":"${SECRET_AT}","token_type":"Bearer","refresh_token":"${SECRET_RT}"}`, SECRET_RT);
  assert.ok(!inspect(answer, { depth: 9 }).includes('secret'));
  const plan = planRefresh(SECRET_RT, storedFromLogin({ accessToken: 'at-2', refreshToken: 'rt-2' }));
  assert.ok(!inspect(plan, { depth: 9 }).includes('rt-2'));
  const request = tokenRequest({ url: 'https://a/token', clientId: 'c', clientSecret: 'cs-very-secret', auth: 'basic' }, SECRET_RT);
  assert.match(request.headers.Authorization, /^Basic /);
  const failed = new RequestFailedError('unauthorized', { status: 401 });
  assert.ok(!inspect(failed).includes('status'), 'the response stays out of the error text');
  const session = new Session({ tokenEndpoint: { url: 'https://a/token', clientId: 'c', clientSecret: 'cs-very-secret' }, credentials: { accessToken: SECRET_AT, refreshToken: SECRET_RT }, logger: {} });
  assert.ok(!inspect(session, { depth: 9, showHidden: true }).includes('secret'));
  session.close();
});

test('a trap in the module is an error, and every later call is refused', () => {
  const trap = new Native({
    memory: new WebAssembly.Memory({ initial: 1 }),
    boom() {
      throw new WebAssembly.RuntimeError('unreachable');
    },
    fine() {
      return 0;
    },
  });
  assert.throws(() => trap.call('boom'), (e) => e instanceof ReauthError && e.kind === 'internal');
  assert.throws(() => trap.call('fine'), (e) => e instanceof ReauthError && e.kind === 'internal');
});

test('an endless or malformed token answer is read within its limit', () => {
  const endless = new Uint8Array(10 * 1024 * 1024).fill(0x20);
  const answer = readTokenResponse(200, null, endless, 'rt');
  assert.equal(answer.outcome, 'transient');
  assert.equal(answer.problem, 'too_large');
  assert.equal(readTokenResponse(200, null, '{"access_token": "a", "access_token": "b", "token_type": "Bearer"}', 'rt').problem, 'duplicate_field');
  assert.equal(readTokenResponse(70000, null, '', 'rt').outcome, 'transient');
  assert.throws(() => readTokenResponse(200, null, 42, 'rt'), TypeError);
});
