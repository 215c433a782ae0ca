// The stores: memory, Web Storage (with a Storage stand-in), the tabs' shared lock (with a
// LockManager stand-in; the real one runs in test/browser.test.js), the file store's
// atomic 0600 file and its lock between processes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync, readdirSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore, WebStorageStore, sharedAcrossTabs } from '../src/index.js';
import { FileStore } from '../src/node.js';

const record = { accessToken: 'at-1', refreshToken: 'rt-1', expiresAt: 1_700_000_000_000 };

class FakeStorage {
  items = new Map();
  getItem(k) {
    return this.items.has(k) ? this.items.get(k) : null;
  }
  setItem(k, v) {
    this.items.set(k, String(v));
  }
  removeItem(k) {
    this.items.delete(k);
  }
}

test('memory and Web Storage stores keep one record and refuse what is not one', () => {
  for (const store of [new MemoryStore(), new WebStorageStore(new FakeStorage(), 'app')]) {
    assert.equal(store.load(), null);
    store.save(record);
    assert.deepEqual(store.load(), record);
    assert.throws(() => store.save({ accessToken: '' }), TypeError);
    assert.throws(() => store.save({ accessToken: 'a', expiresAt: NaN }), TypeError);
    assert.deepEqual(store.load(), record, 'a refused save changes nothing');
    store.clear();
    assert.equal(store.load(), null);
  }
  const storage = new FakeStorage();
  storage.setItem('app', '{"not": "ours"}');
  assert.throws(() => new WebStorageStore(storage, 'app').load(), /is not reauth's/);
  assert.throws(() => new WebStorageStore({}), TypeError);
});

test('an in-process lock runs holders one at a time, in order, past a failure', async () => {
  const store = new MemoryStore();
  const seen = [];
  const hold = (name, ms, fail = false) =>
    store.lock(async () => {
      seen.push(`${name}+`);
      await new Promise((r) => setTimeout(r, ms));
      seen.push(`${name}-`);
      if (fail) throw new Error('boom');
      return name;
    });
  const results = await Promise.allSettled([hold('a', 20), hold('b', 1, true), hold('c', 5)]);
  assert.deepEqual(seen, ['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
});

test('sharedAcrossTabs takes the named Web Lock around each refresh and announces saves', async () => {
  const requests = [];
  const locks = {
    async request(name, options, fn) {
      requests.push([name, options.mode]);
      return fn();
    },
  };
  const inner = new MemoryStore();
  const shared = sharedAcrossTabs(inner, 'app', { locks, onChange: () => {} });
  assert.equal(await shared.lock(() => 7), 7);
  assert.deepEqual(requests, [['app', 'exclusive']]);
  await shared.save(record);
  assert.deepEqual(inner.load(), record);
  const other = new BroadcastChannel('app');
  const message = new Promise((r) => (other.onmessage = (e) => r(e.data)));
  await shared.clear();
  assert.equal(await message, 'cleared');
  other.close();
  shared.close();
  assert.throws(() => sharedAcrossTabs(inner, 'app', { locks: undefined }), /Web Locks/);
  assert.throws(() => sharedAcrossTabs(new WebStorageStore(new FakeStorage()), 'app', { locks }), /use IndexedDbStore/);
});

test('the file store: atomic, owner-only, and a clear error for a foreign file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'reauth-file-'));
  const path = join(dir, 'nested', 'credentials.json');
  const store = new FileStore(path);
  assert.equal(await store.load(), null);
  await store.save(record);
  assert.deepEqual(await store.load(), record);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(join(dir, 'nested')), ['credentials.json'], 'no temporary file left');
  await store.clear();
  assert.equal(await store.load(), null);
  writeFileSync(path, 'garbage');
  await assert.rejects(store.load(), /does not hold a reauth record/);
});

test('the file lock excludes another holder (another process) and takes over a dead one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'reauth-lock-'));
  const path = join(dir, 'credentials.json');
  // Two stores on one file stand for two processes: their in-process locks differ, the
  // lock file does not.
  const a = new FileStore(path);
  const b = new FileStore(path);
  const seen = [];
  const hold = (store, name) =>
    store.lock(async () => {
      seen.push(`${name}+`);
      await new Promise((r) => setTimeout(r, 30));
      seen.push(`${name}-`);
    });
  await Promise.all([hold(a, 'a'), hold(b, 'b')]);
  assert.ok(seen.join() === 'a+,a-,b+,b-' || seen.join() === 'b+,b-,a+,a-', seen.join());
  // A lock file left by a holder that died long ago is taken over.
  writeFileSync(`${path}.lock`, '');
  const old = (Date.now() - 120_000) / 1000;
  utimesSync(`${path}.lock`, old, old);
  assert.equal(await new FileStore(path, { lockTtlMs: 60_000 }).lock(() => 'taken'), 'taken');
  // A live one is waited for, then given up with a clear error.
  writeFileSync(`${path}.lock`, '');
  await assert.rejects(new FileStore(path, { lockWaitMs: 100 }).lock(() => 'never'), /stayed locked for 100 ms/);
});
