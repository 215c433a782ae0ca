#!/usr/bin/env node
// What reauth/axios costs per request next to plain axios with a fixed token: the same
// axios, the same loopback server (the reference server, 1-hour tokens, so no refresh
// runs), measured side by side and interleaved — rounds alternate between the two
// clients, and the ratio is of their medians. Reports the wall time per request and the
// client process's CPU time per request (the server runs in its own process).
//
//   node bench/axios-overhead.js                 # 15 rounds of 400 requests each
//   node bench/axios-overhead.js --check 1.2     # exit 1 when the CPU ratio exceeds 1.2
//
// Wall-clock numbers on a shared machine are noisy: this is a benchmark to read, not a
// test. CI runs it with --check on the CPU ratio of the medians.

import axios from 'axios';
import { Session } from '../src/index.js';
import { attach } from '../src/axios.js';
import { startServer } from '../test/server.js';

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function measure(get, requests, concurrency) {
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const i = next++;
        const r = await get(`/api/bench/${i % 16}`);
        if (r.status !== 200) throw new Error(`status ${r.status}`);
      }
    }),
  );
  const wall = Number(process.hrtime.bigint() - started) / 1e3 / requests;
  const used = process.cpuUsage(cpu);
  return { wall, cpu: (used.user + used.system) / requests };
}

async function main(argv) {
  const args = { rounds: 15, requests: 400, concurrency: 1, check: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in args)) {
      console.error('usage: node bench/axios-overhead.js [--rounds N] [--requests N] [--concurrency N] [--check RATIO]');
      return 2;
    }
    args[key] = Number(argv[i + 1]);
  }
  const server = await startServer(['--access-ttl-ms', '3600000']);
  try {
    const credentials = await server.login();
    const plain = axios.create({ baseURL: server.url, headers: { Authorization: `Bearer ${credentials.accessToken}` } });
    const session = new Session({ tokenEndpoint: { url: server.tokenUrl, clientId: 'bench' }, credentials, logger: {} });
    const reauth = attach(axios.create({ baseURL: server.url }), session);
    const clients = { plain: (p) => plain.get(p), reauth: (p) => reauth.get(p) };
    // Warm up both (JIT, keep-alive sockets).
    for (const get of Object.values(clients)) await measure(get, 200, args.concurrency);
    const samples = { plain: [], reauth: [] };
    for (let round = 0; round < args.rounds; round++) {
      const order = round % 2 === 0 ? ['plain', 'reauth'] : ['reauth', 'plain'];
      for (const name of order) samples[name].push(await measure(clients[name], args.requests, args.concurrency));
    }
    const stats = session.stats();
    session.close();
    const row = (name) => ({ wall: median(samples[name].map((s) => s.wall)), cpu: median(samples[name].map((s) => s.cpu)) });
    const p = row('plain');
    const r = row('reauth');
    const cpuRatio = r.cpu / p.cpu;
    console.log(`axios ${axios.VERSION}, ${args.rounds} interleaved rounds of ${args.requests} requests, concurrency ${args.concurrency}, loopback, no refresh (${stats.refresh_cycles} cycles)`);
    console.log('| client | wall µs/request (median) | client CPU µs/request (median) |');
    console.log('| --- | ---: | ---: |');
    console.log(`| plain axios, fixed token | ${p.wall.toFixed(1)} | ${p.cpu.toFixed(1)} |`);
    console.log(`| reauth/axios | ${r.wall.toFixed(1)} | ${r.cpu.toFixed(1)} |`);
    console.log(`| ratio | ${(r.wall / p.wall).toFixed(3)}× | ${cpuRatio.toFixed(3)}× |`);
    if (args.check > 0 && cpuRatio > args.check) {
      console.error(`reauth/axios costs ${cpuRatio.toFixed(3)}× plain axios in client CPU, over the budget of ${args.check}×`);
      return 1;
    }
    return 0;
  } finally {
    await server.stop();
  }
}

process.exitCode = await main(process.argv.slice(2));
