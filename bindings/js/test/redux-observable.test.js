// The redux-observable example (examples/redux-observable) under the demo's load: the
// classic "API call → 401 → refresh → replay, logout when refused" flow with reauth
// making the decisions, against the reference server with the demo's faults.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createApp } from '../examples/redux-observable/app.js';
import { CONFIG, drive } from '../bench/load.js';
import { startServer, CHAOS } from './server.js';

const CLIENTS = 32;
const SECONDS = 5;
// The server's fault dice (reproducible); REAUTH_SEED=n tries another sequence.
const SEED = process.env.REAUTH_SEED ?? '1';

/** A request through the store: resolves true on `api/succeeded`, throws `{reason}` on `api/failed`. */
function viaStore(app) {
  return async (path) => {
    const outcome = await app.request(path);
    if (outcome.type === 'api/succeeded') return true;
    throw Object.assign(new Error(outcome.message), { reason: outcome.reason });
  };
}

test('32 loops of api/request under chaos and 401 storms: every request succeeds, one server call per refresh attempt', { timeout: 20_000 }, async () => {
  const server = await startServer(['--access-ttl-ms', '1500', '--seed', SEED, ...CHAOS]);
  let app;
  try {
    app = createApp({ baseUrl: server.url, tokenUrl: server.tokenUrl, credentials: await server.login(), config: CONFIG });
    await app.session.ready;
    const started = performance.now();
    const counts = await drive({ server, clients: CLIENTS, seconds: SECONDS, storms: true, request: viaStore(app) });
    const elapsed = performance.now() - started;
    const stats = app.session.stats();
    const served = await server.stats();
    const state = app.store.getState();
    console.log(
      `redux-observable (seed ${SEED}): ${counts.requests} requests, ${counts.ok} succeeded, failed ${JSON.stringify(counts.failed)}, ` +
        `${counts.storms} storms, ${served.refresh_calls} refresh calls / ${stats.refresh_attempts} attempts ` +
        `(${stats.refresh_cycles} cycles, ${stats.refresh_transient} transient), ${served.rotations} rotations, ` +
        `${served.grace_replays} grace replays, ${stats.replayed} replays, ${Math.round(elapsed)} ms`,
    );

    assert.deepEqual(counts.failed, {});
    assert.equal(counts.ok, counts.requests);
    // Every loop ran (how many requests fit in 5 s depends on the fault dice: a run of 429s
    // can hold every request behind one refresh for seconds).
    assert.ok(counts.requests >= CLIENTS, `only ${counts.requests} requests`);
    assert.ok(counts.storms >= 3, `${counts.storms} storms`);
    assert.deepEqual(state.requests, { pending: 0, ok: counts.requests, failed: 0 });
    assert.equal(state.session, 'active');
    assert.equal(state.logoutReason, null);
    assert.equal(state.lastError, null);
    assert.equal(stats.logouts, 0);
    assert.equal(served.reuse_detections, 0);
    assert.equal(served.refresh_rejections, 0);
    assert.ok(stats.refresh_attempts > 0);
    // No duplicate refresh: every call the server saw is one attempt of the core's.
    assert.equal(served.refresh_calls, stats.refresh_attempts);
    // Each request went out once and was answered 200 once; every 401 the server sent
    // (storms that caught tokens in use: none when a refresh was running) was replayed.
    assert.equal(stats.submitted, counts.requests);
    assert.equal(served.served, counts.requests);
    assert.equal(stats.unauthorized_responses, served.unauthorized);
    assert.equal(stats.replayed, stats.unauthorized_responses);
  } finally {
    app?.close();
    await server.stop();
  }
});

test('a revoked token family: the refresh is refused, the store logs out, every pending request fails, none hangs', { timeout: 20_000 }, async () => {
  const server = await startServer(['--access-ttl-ms', '1500', '--seed', SEED, ...CHAOS]);
  let app;
  try {
    app = createApp({ baseUrl: server.url, tokenUrl: server.tokenUrl, credentials: await server.login(), config: CONFIG });
    await app.session.ready;
    const { store } = app;

    // Each failure's state, seen when the api/failed action arrives: reauth carries the
    // logout out before it hands the waiting requests their failures.
    const failures = [];
    const unsubscribe = store.subscribe(() => {
      const { lastError, session, logoutReason } = store.getState();
      if (lastError !== null && failures.at(-1)?.error !== lastError) failures.push({ error: lastError, session, logoutReason });
    });

    let succeeded = 0;
    let dispatched = 0;
    let revoked = false;
    const until = Date.now() + 12_000;
    const loops = Array.from({ length: CLIENTS }, async (_, worker) => {
      for (let n = 1; Date.now() < until; n++) {
        dispatched++;
        const outcome = await app.request(`/api/items/${worker}-${n}`);
        if (outcome.type === 'api/failed') return outcome;
        succeeded++;
      }
      return null;
    });
    await new Promise((r) => setTimeout(r, 500));
    const revoke = await fetch(`${server.url}/admin/revoke`, { method: 'POST' });
    assert.equal(revoke.status, 204);
    revoked = true;
    const ends = await Promise.all(loops);
    unsubscribe();

    const state = store.getState();
    const reasons = {};
    for (const f of failures) reasons[f.error.reason] = (reasons[f.error.reason] ?? 0) + 1;
    console.log(`redux-observable, revoked: ${dispatched} dispatched, ${succeeded} succeeded, failed ${JSON.stringify(reasons)}`);

    assert.ok(revoked);
    assert.ok(succeeded > 0);
    // Every loop ended on a failure, well before its 12 s: nothing hung, nothing replayed forever.
    assert.ok(ends.every((e) => e !== null), 'a loop ran out its time without a failure');
    assert.ok(Date.now() < until, 'the loops took until the deadline');
    assert.equal(state.session, 'logged_out');
    assert.equal(state.logoutReason, 'refresh_rejected');
    assert.deepEqual(state.requests, { pending: 0, ok: succeeded, failed: failures.length });
    assert.equal(succeeded + failures.length, dispatched);
    assert.equal(failures.length, CLIENTS);
    assert.ok(reasons.refresh_rejected > 0, 'no request failed refresh_rejected');
    for (const f of failures) {
      assert.ok(['refresh_rejected', 'logged_out', 'not_logged_in'].includes(f.error.reason), `failed ${f.error.reason}`);
      assert.equal(f.session, 'logged_out', `api/failed (${f.error.reason}) arrived before session/loggedOut`);
      assert.equal(f.logoutReason, 'refresh_rejected');
    }
    const stats = app.session.stats();
    assert.equal(stats.logouts, 1);
    const served = await server.stats();
    assert.ok(served.refresh_rejections >= 1);
    assert.equal(served.families_revoked, 1);

    // session/login signs in again (a new family): the store is active, requests succeed.
    const loggedIn = new Promise((resolve) => {
      const stop = store.subscribe(() => {
        if (store.getState().session === 'active') {
          stop();
          resolve();
        }
      });
    });
    store.dispatch({ type: 'session/login', credentials: await server.login() });
    await loggedIn;
    assert.equal(store.getState().logoutReason, null);
    const again = await app.request('/api/items/again');
    assert.equal(again.type, 'api/succeeded', JSON.stringify(again));

    // session/logout: the user's logout, through reauth; later requests fail not_logged_in.
    store.dispatch({ type: 'session/logout' });
    assert.equal(store.getState().session, 'logged_out');
    assert.equal(store.getState().logoutReason, 'requested');
    const after = await app.request('/api/items/after');
    assert.equal(after.type, 'api/failed');
    assert.equal(after.reason, 'not_logged_in');
  } finally {
    app?.close();
    await server.stop();
  }
});
