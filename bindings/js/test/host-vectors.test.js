// The host conformance table (tests/host-vectors/, format in its README) read through the
// JavaScript package: every token-endpoint answer, challenge and route comes out as the
// table says, problem codes included.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readTokenResponse, bearerError, isCallersAnswer, defaultRoute, routeKey, Token } from '../src/index.js';
import { readJson } from './paths.js';

const tokens = readJson('tests/host-vectors/token-responses.json');

function body(c) {
  const bytes = 'body' in c ? new TextEncoder().encode(c.body) : Uint8Array.from(atob(c.body_base64), (ch) => ch.charCodeAt(0));
  if (c.pad_to === undefined || c.pad_to <= bytes.length) return bytes;
  const padded = new Uint8Array(c.pad_to).fill(0x20);
  padded.set(bytes);
  return padded;
}

function observed(a) {
  if (a.outcome === 'succeeded') {
    return {
      outcome: 'succeeded',
      access_token: a.credentials.accessToken.expose(),
      refresh_token: a.credentials.refreshToken?.expose() ?? null,
      expires_in_ms: a.credentials.expiresInMs,
    };
  }
  if (a.outcome === 'rejected') return { outcome: 'rejected', error: a.error };
  return {
    outcome: 'transient',
    retry_after_ms: a.retryAfterMs,
    problem: a.problem,
    rotated_refresh_token: a.rotatedRefreshToken?.expose() ?? null,
  };
}

test('the token-response table is whole', () => {
  assert.ok(tokens.cases.length >= 45);
});

for (const c of tokens.cases) {
  test(`token response: ${c.name.slice(0, 70)}`, () => {
    const answer = readTokenResponse(c.status, c.retry_after ?? null, body(c), new Token(tokens.sent_refresh_token), tokens.wall_now_ms);
    assert.deepEqual(observed(answer), c.expect);
  });
}

for (const c of readJson('tests/host-vectors/challenges.json').cases) {
  test(`challenge: ${JSON.stringify(c.www_authenticate).slice(0, 70)}`, () => {
    assert.equal(bearerError(c.www_authenticate), c.bearer_error);
    assert.equal(isCallersAnswer(c.www_authenticate), c.callers_answer);
  });
}

for (const c of readJson('tests/host-vectors/routes.json').cases) {
  test(`route: ${c.name.slice(0, 70)}`, () => {
    const got = defaultRoute(c.method, { scheme: c.scheme, host: c.host, port: c.port, path: c.path }, { name: true });
    assert.deepEqual(got, { key: c.route_key, name: c.name });
    assert.equal(routeKey(c.name), c.route_key);
  });
}
