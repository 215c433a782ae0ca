#!/usr/bin/env node
// The demo's load (demo/src/run.rs) from JavaScript: 64 clients share one session and
// call the reference server back to back for a few seconds with 1.5 s access tokens;
// `chaos` adds the demo's token-endpoint faults and a 401 storm every second, `strict`
// takes the server's grace window away. Each strategy gets a server of its own.
//
//   node bench/load.js                         # every strategy, plain / chaos / strict, 5 s each
//   node bench/load.js --seconds 3 --strategy reauth-axios --run chaos
//
// Strategies: `reauth-axios` (reauth/axios), `reauth-fetch` (reauth/fetch),
// `axios-auth-refresh` (the most used package for this, set up as its README shows).
// "Lost" is what the demo calls it: a request that did not end with its 200.

import axios from 'axios';
import createAuthRefresh from 'axios-auth-refresh';
import { Session } from '../src/index.js';
import { attach } from '../src/axios.js';
import { reauthFetch } from '../src/fetch.js';
import { startServer, CHAOS } from '../test/server.js';

/** The demo's reauth config: defaults with a quick backoff. */
export const CONFIG = { initialBackoffMs: 50, maxBackoffMs: 1000, maxRetries: 8, refreshTimeoutMs: 3000 };

export const RUNS = {
  plain: [],
  chaos: CHAOS,
  strict: ['--grace-ms', '0'],
  'chaos-strict': [...CHAOS.slice(0, -2), '--grace-ms', '0'],
};

/**
 * Runs `clients` loops of `request(path)` (resolves true for a 200) for `seconds`, with a
 * 401 storm every second when `storms`. Returns { requests, ok, failed: {reason: n}, storms }.
 */
export async function drive({ server, clients = 64, seconds, storms = false, request }) {
  const until = Date.now() + seconds * 1000;
  const failed = {};
  let requests = 0;
  let ok = 0;
  let stormCount = 0;
  const stormer = storms
    ? (async () => {
        while (Date.now() + 1000 < until) {
          await new Promise((r) => setTimeout(r, 1000));
          await server.revokeAccess();
          stormCount++;
        }
      })()
    : Promise.resolve();
  await Promise.all(
    Array.from({ length: clients }, async (_, worker) => {
      for (let n = 1; Date.now() < until; n++) {
        requests++;
        try {
          if (await request(`/api/items/${worker}-${n}`)) ok++;
          else failed.status = (failed.status ?? 0) + 1;
        } catch (e) {
          const reason = e?.reason ?? e?.response?.status ?? e?.code ?? e?.name ?? 'error';
          failed[reason] = (failed[reason] ?? 0) + 1;
        }
      }
    }),
  );
  await stormer;
  return { requests, ok, failed, storms: stormCount };
}

/**
 * One strategy under one run: its own server (seed `seed`), `clients` loops for
 * `seconds`. Returns the counts, the server's counters and, for reauth, the session's
 * stats, the token-endpoint calls it made and its logouts.
 */
export async function runStrategy(strategy, run, { seconds = 5, clients = 64, seed = 521 } = {}) {
  const server = await startServer(['--access-ttl-ms', '1500', '--seed', String(seed), ...RUNS[run]]);
  try {
    const chaos = run.startsWith('chaos');
    if (strategy === 'axios-auth-refresh') {
      return { strategy, run, ...(await axiosAuthRefresh(server, { seconds, clients, storms: chaos })), server: await server.stats() };
    }
    let calls = 0;
    const logouts = [];
    const counted = (url, init) => {
      calls++;
      return fetch(url, init);
    };
    const session = new Session({
      tokenEndpoint: { url: server.tokenUrl, clientId: 'demo' },
      credentials: await server.login(),
      config: CONFIG,
      fetch: counted,
      logger: {},
      onLogout: (reason) => {
        logouts.push(reason);
        // The user signs in again (as the demo's app does).
        server.login().then((c) => session.login(c)).catch(() => {});
      },
    });
    await session.ready;
    let request;
    if (strategy === 'reauth-axios') {
      const api = attach(axios.create({ baseURL: server.url }), session);
      request = async (path) => (await api.get(path)).status === 200;
    } else {
      const f = reauthFetch(session);
      request = async (path) => {
        const response = await f(`${server.url}${path}`);
        await response.arrayBuffer();
        return response.status === 200;
      };
    }
    const counts = await drive({ server, clients, seconds, storms: chaos, request });
    const stats = session.stats();
    session.close();
    return { strategy, run, ...counts, stats, calls, logouts, server: await server.stats() };
  } finally {
    await server.stop();
  }
}

/** axios-auth-refresh as its README sets it up: a request interceptor adds the token. */
async function axiosAuthRefresh(server, { seconds, clients, storms }) {
  let tokens = await server.login();
  let calls = 0;
  const api = axios.create({ baseURL: server.url });
  api.interceptors.request.use((config) => {
    config.headers.Authorization = `Bearer ${tokens.accessToken}`;
    return config;
  });
  createAuthRefresh(api, async (failed) => {
    calls++;
    const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refreshToken, client_id: 'demo' });
    const answer = await axios.post(server.tokenUrl, body, { timeout: 3000 });
    tokens = { accessToken: answer.data.access_token, refreshToken: answer.data.refresh_token };
    failed.response.config.headers.Authorization = `Bearer ${tokens.accessToken}`;
  });
  const request = async (path) => (await api.get(path)).status === 200;
  return { ...(await drive({ server, clients, seconds, storms, request })), calls };
}

function lost(r) {
  return Object.values(r.failed).reduce((a, b) => a + b, 0);
}

async function main(argv) {
  const args = { seconds: 5, clients: 64, seed: 521, strategy: 'reauth-axios,reauth-fetch,axios-auth-refresh', run: 'plain,chaos,strict' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in args) || argv[i + 1] === undefined) {
      console.error('usage: node bench/load.js [--seconds N] [--clients N] [--seed N] [--strategy a,b] [--run plain,chaos,strict,chaos-strict]');
      return 2;
    }
    args[key] = typeof args[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  console.log(`${args.clients} clients, ${args.seconds} s per run, 1.5 s access tokens, server seed ${args.seed}`);
  console.log('| run | strategy | requests | answered 200 | lost | refresh calls | rotations | reuse detections | logouts |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const run of args.run.split(',')) {
    for (const strategy of args.strategy.split(',')) {
      const r = await runStrategy(strategy, run, args);
      const why = Object.entries(r.failed).map(([k, v]) => `${k} ${v}`).join(', ');
      console.log(
        `| ${run} | ${strategy} | ${r.requests} | ${r.ok} | ${lost(r)}${why ? ` (${why})` : ''} | ${r.server.refresh_calls} | ${r.server.rotations} | ${r.server.reuse_detections} | ${r.logouts?.length ?? '–'} |`,
      );
    }
  }
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}
