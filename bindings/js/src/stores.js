// Credential stores (contract §12.1–§12.2). A store keeps one record — `{ accessToken,
// refreshToken, expiresAt }` (strings; `expiresAt` in wall-clock milliseconds or null) —
// and offers `load()`, `save(record)`, `clear()` and `lock(fn)`: `fn` runs while no other
// holder of the same lock runs, and the refresh reads, calls and saves inside it. Any of
// them may return a promise.
//
// What a browser can keep secret: nothing a script on the page cannot read. localStorage
// and sessionStorage are readable by any script of the origin (an XSS reads the refresh
// token); sessionStorage ends with the tab, localStorage persists. An HttpOnly cookie set
// by a backend-for-frontend is the way to keep a refresh token out of reach of scripts;
// with tokens in JavaScript, keep their lifetimes short and rotation on (reauth never
// presents a rotated-away token, so the server's reuse detection stays armed for thieves).

import { describe } from './token.js';

/** An in-process lock: callers run one at a time, in the order they asked. */
export class Mutex {
  #tail = Promise.resolve();

  lock(fn) {
    const run = this.#tail.then(() => fn());
    this.#tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

/** Keeps the record in memory: one process, one tab. The default. */
export class MemoryStore {
  #record = null;
  #mutex = new Mutex();

  load() {
    return this.#record === null ? null : { ...this.#record };
  }

  save(record) {
    this.#record = checkRecord(record);
  }

  clear() {
    this.#record = null;
  }

  lock(fn) {
    return this.#mutex.lock(fn);
  }
}

/**
 * Keeps the record in a Web Storage object (`localStorage`, `sessionStorage`) under
 * `key`: one tab's session across reloads (localStorage) or for the tab's life
 * (sessionStorage). Not for several tabs at once: localStorage is cached per tab process,
 * so tabs share a session through {@link IndexedDbStore} and {@link sharedAcrossTabs}.
 */
export class WebStorageStore {
  #storage;
  #key;
  #mutex = new Mutex();

  constructor(storage, key = 'reauth') {
    if (storage === undefined || storage === null || typeof storage.getItem !== 'function') {
      throw new TypeError('WebStorageStore needs a Storage (localStorage or sessionStorage)');
    }
    if (typeof key !== 'string' || key === '') throw new TypeError(`the key is a non-empty string, not ${describe(key)}`);
    this.#storage = storage;
    this.#key = key;
  }

  load() {
    const raw = this.#storage.getItem(this.#key);
    if (raw === null) return null;
    try {
      return checkRecord(JSON.parse(raw));
    } catch {
      throw new TypeError(`the stored record under ${JSON.stringify(this.#key)} is not reauth's`);
    }
  }

  save(record) {
    this.#storage.setItem(this.#key, JSON.stringify(checkRecord(record)));
  }

  clear() {
    this.#storage.removeItem(this.#key);
  }

  lock(fn) {
    return this.#mutex.lock(fn);
  }
}

/**
 * Keeps the record in IndexedDB (database `name`, the record under `key`): each load,
 * save and clear is one transaction, settled once it has committed. IndexedDB is one
 * ordered database for every tab of the origin, so a tab that takes the lock after
 * another saved reads what it saved — the store to share across tabs with
 * {@link sharedAcrossTabs}. (localStorage is not: Chromium gives each tab's renderer its
 * own copy, updated in the background, so a tab under the lock can still read the record
 * another tab has replaced.)
 */
export class IndexedDbStore {
  #db;
  #key;
  #mutex = new Mutex();

  constructor(name = 'reauth', key = 'credentials', { indexedDB = globalThis.indexedDB } = {}) {
    if (indexedDB === undefined || indexedDB === null) throw new TypeError('IndexedDbStore needs IndexedDB (a browser)');
    if (typeof name !== 'string' || name === '' || typeof key !== 'string' || key === '') {
      throw new TypeError('IndexedDbStore needs a database name and a key (non-empty strings)');
    }
    this.#key = key;
    this.#db = new Promise((resolve, reject) => {
      const open = indexedDB.open(name, 1);
      open.onupgradeneeded = () => open.result.createObjectStore('records');
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }

  async #transaction(mode, operation) {
    const t = (await this.#db).transaction('records', mode);
    const request = operation(t.objectStore('records'));
    return new Promise((resolve, reject) => {
      t.oncomplete = () => resolve(request.result);
      t.onerror = t.onabort = () => reject(t.error);
    });
  }

  async load() {
    const record = await this.#transaction('readonly', (records) => records.get(this.#key));
    return record === undefined ? null : checkRecord(record);
  }

  async save(record) {
    const checked = checkRecord(record);
    await this.#transaction('readwrite', (records) => records.put(checked, this.#key));
  }

  async clear() {
    await this.#transaction('readwrite', (records) => records.delete(this.#key));
  }

  lock(fn) {
    return this.#mutex.lock(fn);
  }
}

/**
 * The §12.2 recipe across the tabs of one origin: `store`'s record (an
 * {@link IndexedDbStore}) under one Web Lock
 * named `name` (`navigator.locks`), so a tab refreshes only while no other tab does, and
 * reads what the last one stored first — two tabs never present the same refresh token.
 * The lock is released when the refresh ends or the tab goes away. Each save is also
 * announced on a BroadcastChannel of the same name (`onChange` hears other tabs'
 * rotations and logouts; reauth itself needs only the lock).
 */
export function sharedAcrossTabs(store, name = 'reauth', { locks = globalThis.navigator?.locks, onChange } = {}) {
  if (locks === undefined || typeof locks.request !== 'function') {
    throw new TypeError('sharedAcrossTabs needs the Web Locks API (navigator.locks)');
  }
  checkStore(store);
  if (store instanceof WebStorageStore) {
    throw new TypeError(
      'sharedAcrossTabs needs a store every tab reads coherently: use IndexedDbStore (localStorage is cached per tab process, so a tab under the lock can read a record another tab replaced)',
    );
  }
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(name) : null;
  if (channel !== null && onChange !== undefined) {
    channel.onmessage = (message) => onChange(message.data);
  }
  return {
    load: () => store.load(),
    async save(record) {
      await store.save(record);
      channel?.postMessage('saved');
    },
    async clear() {
      await store.clear();
      channel?.postMessage('cleared');
    },
    lock: (fn) => locks.request(name, { mode: 'exclusive' }, () => fn()),
    close: () => channel?.close(),
  };
}

/** The store, if it has the four methods. */
export function checkStore(store) {
  for (const method of ['load', 'save', 'clear', 'lock']) {
    if (typeof store?.[method] !== 'function') {
      throw new TypeError(`a store has load(), save(record), clear() and lock(fn); this one has no ${method}()`);
    }
  }
  return store;
}

/** A record as stores keep it, checked. */
export function checkRecord(record) {
  if (typeof record !== 'object' || record === null) throw new TypeError(`a stored record is an object, not ${describe(record)}`);
  const { accessToken, refreshToken = null, expiresAt = null } = record;
  if (typeof accessToken !== 'string' || accessToken === '') throw new TypeError('a stored record needs an accessToken string');
  if (refreshToken !== null && typeof refreshToken !== 'string') throw new TypeError('a stored refreshToken is a string or null');
  if (expiresAt !== null && !(typeof expiresAt === 'number' && Number.isFinite(expiresAt) && expiresAt >= 0)) {
    throw new TypeError('a stored expiresAt is a number of milliseconds or null');
  }
  return { accessToken, refreshToken, expiresAt };
}
