// The page test/browser.test.js opens in two tabs of one origin: the package as a browser
// loads it (ES modules, the wasm from dist/), a Session per tab and request loops through
// reauthFetch against the reference server of another origin (CORS). window.harness is
// what the test drives with page.evaluate.

import { Session, MemoryStore, IndexedDbStore, WebStorageStore, sharedAcrossTabs } from '../../src/index.js';
import { reauthFetch } from '../../src/fetch.js';

const KEY = 'reauth-test';
const CONFIG = { initialBackoffMs: 50, maxBackoffMs: 1000, maxRetries: 8, refreshTimeoutMs: 3000 };
const MAX_LOG = 200;

let session = null;
let apiFetch = null;
let store = null;
let tokenUrl = null;
const log = [];
let adoptions = 0;
const logouts = [];
// The token endpoint's calls, counted from the network (Resource Timing): the session
// calls the endpoint with its own fetch, and the page does not wrap it.
let tokenCalls = 0;

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (entry.name === tokenUrl) tokenCalls++;
}).observe({ type: 'resource' });

const logger = Object.fromEntries(
  ['info', 'warn', 'error'].map((level) => [
    level,
    (message) => {
      if (message.startsWith('reauth: adopting')) adoptions++;
      if (log.length < MAX_LOG) log.push(`${level}: ${message}`);
    },
  ]),
);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * This tab's store: 'indexedDB' under the Web Lock (the package's IndexedDbStore and
 * sharedAcrossTabs), 'localStorage' (refused by sharedAcrossTabs: not coherent across tab
 * processes), or 'memory' (its own).
 */
function makeStore(kind) {
  if (kind === 'localStorage') return sharedAcrossTabs(new WebStorageStore(localStorage, KEY), KEY);
  if (kind === 'indexedDB') return sharedAcrossTabs(new IndexedDbStore('reauth-test', KEY), KEY);
  if (kind === 'memory') return new MemoryStore();
  throw new TypeError(`no store ${kind}`);
}

window.harness = {
  /**
   * Creates this tab's session on a store of `storeKind` (makeStore; `clear` empties it
   * first). Without `credentials`, the session restores from the store.
   */
  async start({ tokenEndpoint, credentials = null, storeKind, clear = false }) {
    tokenUrl = tokenEndpoint;
    store = makeStore(storeKind);
    if (clear) await store.clear();
    session = new Session({
      tokenEndpoint: { url: tokenEndpoint, clientId: 'demo' },
      ...(credentials === null ? {} : { credentials }),
      store,
      config: CONFIG,
      logger,
      onLogout: (reason) => logouts.push(reason),
    });
    await session.ready;
    apiFetch = reauthFetch(session);
    return { loggedIn: session.isLoggedIn(), stored: (await store.load()) !== null };
  },

  /**
   * `loops` concurrent request loops for `durationMs` against `${api}/api/items/TAB-N`:
   * counts the 200s and the failures (by status or error reason). A failed request
   * pauses its loop 50 ms (a logged-out session fails at once: no busy loop).
   */
  async run({ api, tab, loops, durationMs }) {
    const end = performance.now() + durationMs;
    const result = { ok: 0, failed: 0, failures: {} };
    const fail = (why) => {
      result.failed++;
      result.failures[why] = (result.failures[why] ?? 0) + 1;
    };
    async function loop(n) {
      const url = `${api}/api/items/${tab}-${n}`;
      while (performance.now() < end) {
        try {
          const response = await apiFetch(url);
          if (response.status === 200) {
            await response.json();
            result.ok++;
            continue;
          }
          await response.body?.cancel();
          fail(`status ${response.status}`);
        } catch (e) {
          fail(`${e?.name}: ${e?.reason ?? e?.message}`);
        }
        await sleep(50);
      }
    }
    const started = performance.now();
    await Promise.all(Array.from({ length: loops }, (_, n) => loop(n)));
    result.ms = Math.round(performance.now() - started);
    result.stats = session.stats();
    result.loggedIn = session.isLoggedIn();
    session.close();
    store.close?.();
    result.tokenCalls = tokenCalls;
    result.adoptions = adoptions;
    result.logouts = logouts;
    result.log = log;
    result.visibility = document.visibilityState;
    return result;
  },
};
