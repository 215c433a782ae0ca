// End to end from Node under the demo's load (bench/load.js): 64 concurrent requests
// sharing one session, 1.5 s access tokens, against the reference server — plain, with
// the demo's token-endpoint faults and 401 storms, and on a strict server. Nothing is
// lost, every refresh call is one the core asked for (calls = cycles + transient
// retries), nothing is reused; with faults on a strict server, a logout only follows a
// rotation whose response was lost.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runStrategy } from '../bench/load.js';

const SECONDS = Number(process.env.REAUTH_E2E_SECONDS ?? 3);

function lost(r) {
  return Object.values(r.failed).reduce((a, b) => a + b, 0);
}

for (const strategy of ['reauth-axios', 'reauth-fetch']) {
  for (const run of ['plain', 'chaos', 'strict']) {
    test(`${strategy}, ${run}: 0 lost, no duplicate refresh, no reuse`, async () => {
      const r = await runStrategy(strategy, run, { seconds: SECONDS, clients: 64 });
      console.log(`${strategy} ${run}: ${r.requests} requests, ${r.ok} answered, refresh calls ${r.server.refresh_calls} = ${r.stats.refresh_cycles} cycles + ${r.stats.refresh_attempts - r.stats.refresh_cycles} retries, rotations ${r.server.rotations}, storms ${r.storms}`);
      assert.equal(lost(r), 0, JSON.stringify(r.failed));
      assert.ok(r.requests > 64);
      assert.equal(r.server.refresh_calls, r.calls, 'the server saw every call the session made');
      assert.equal(r.calls, r.stats.refresh_attempts, 'one call per attempt: cycles + transient retries');
      assert.ok(r.stats.refresh_cycles >= 1);
      assert.equal(r.server.reuse_detections, 0);
      assert.equal(r.server.refresh_rejections, 0);
      assert.equal(r.logouts.length, 0);
      if (run === 'chaos') assert.ok(r.storms >= 1, 'the storms ran');
    });
  }
}

test('reauth-axios, chaos on a strict server: logouts only for lost rotation responses', async () => {
  const r = await runStrategy('reauth-axios', 'chaos-strict', { seconds: SECONDS + 1, clients: 64 });
  console.log(`chaos-strict: ${r.requests} requests, ${r.ok} answered, lost ${JSON.stringify(r.failed)}, logouts ${r.logouts.length}, lost responses ${r.server.lost_responses}, reuse detections ${r.server.reuse_detections}`);
  assert.ok(r.logouts.length <= r.server.lost_responses, 'each logout follows a lost rotation');
  assert.ok(r.server.reuse_detections <= r.server.lost_responses);
  for (const reason of Object.keys(r.failed)) {
    assert.ok(['refresh_rejected', 'logged_out', 'not_logged_in'].includes(reason), `lost to ${reason}`);
  }
  if (r.logouts.length === 0) assert.equal(lost(r), 0);
});
