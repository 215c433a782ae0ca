import axios from 'axios';
import { Session } from '../src/index.js';
import { attach } from '../src/axios.js';
import { startServer } from './server.js';
const server = await startServer(['--access-ttl-ms', '1500']);
const session = new Session({ tokenEndpoint: { url: server.tokenUrl, clientId: 'demo' }, credentials: await server.login(), config: { initialBackoffMs: 50, maxBackoffMs: 1000, maxRetries: 8, refreshTimeoutMs: 3000 } });
const api = attach(axios.create({ baseURL: server.url }), session);
let ok = 0, failed = {};
const until = Date.now() + 4000;
await Promise.all(Array.from({ length: 64 }, async (_, w) => {
  for (let n = 0; Date.now() < until; n++) {
    try { const r = await api.get(`/api/items/${w}-${n}`); if (r.status === 200) ok++; } catch (e) { failed[e.message] = (failed[e.message] ?? 0) + 1; }
  }
}));
console.log({ ok, failed, stats: session.stats().refresh_cycles, server: await server.stats() });
session.close();
await server.stop();
