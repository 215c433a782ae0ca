// Node-only stores: a file (one process; several processes of one machine with a lock
// file), so a CLI or a service keeps its session across restarts.

import { link, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Mutex, checkRecord } from './stores.js';

/**
 * Keeps the record in a JSON file readable by its owner only (mode 0600), replaced
 * atomically (written to a temporary file, then renamed). `lock` holds an exclusive lock
 * file beside it (`PATH.lock`, created with O_EXCL) so processes of one machine sharing
 * the file refresh one at a time; a lock file older than `lockTtlMs` is a dead holder's
 * and is taken over.
 */
export class FileStore {
  #path;
  #mutex = new Mutex();

  constructor(path, { lockTtlMs = 60_000, lockWaitMs = 60_000 } = {}) {
    if (typeof path !== 'string' || path === '') throw new TypeError('FileStore needs a file path');
    this.#path = path;
    /** How long a lock file lives before another process may take it over. */
    this.lockTtlMs = lockTtlMs;
    this.lockWaitMs = lockWaitMs;
  }

  async load() {
    let raw;
    try {
      raw = await readFile(this.#path, 'utf8');
    } catch (e) {
      if (e.code === 'ENOENT') return null;
      throw e;
    }
    try {
      return checkRecord(JSON.parse(raw));
    } catch {
      throw new TypeError(`${this.#path} does not hold a reauth record`);
    }
  }

  async save(record) {
    const text = JSON.stringify(checkRecord(record));
    await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
    const temporary = join(dirname(this.#path), `.${basename(this.#path)}.${randomUUID()}`);
    const file = await open(temporary, 'wx', 0o600);
    try {
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(temporary, this.#path);
    } catch (e) {
      await rm(temporary, { force: true });
      throw e;
    }
  }

  async clear() {
    await rm(this.#path, { force: true });
  }

  lock(fn) {
    return this.#mutex.lock(async () => {
      const lockPath = `${this.#path}.lock`;
      await mkdir(dirname(lockPath), { recursive: true, mode: 0o700 });
      const mine = `${process.pid} ${randomUUID()}`;
      const deadline = Date.now() + this.lockWaitMs;
      for (;;) {
        try {
          const file = await open(lockPath, 'wx', 0o600);
          try {
            await file.writeFile(mine);
          } finally {
            await file.close();
          }
          break;
        } catch (e) {
          if (e.code !== 'EEXIST') throw e;
          const held = await stat(lockPath).catch(() => null);
          if (held !== null && Date.now() - held.mtimeMs > this.lockTtlMs) {
            await takeOver(lockPath, held.ino);
            continue;
          }
          if (Date.now() > deadline) throw new Error(`${lockPath} stayed locked for ${this.lockWaitMs} ms`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
      try {
        return await fn();
      } finally {
        // Only our own lock file: one taken over after our lockTtlMs is someone else's.
        if ((await readFile(lockPath, 'utf8').catch(() => null)) === mine) await rm(lockPath, { force: true });
      }
    });
  }
}

/**
 * Removes a dead holder's lock file — that one, not a live one created since: it is
 * renamed aside (atomic: of two processes taking it over, one moves it), and if what was
 * moved is not the file found stale (another process took it over and locked first), it
 * is put back.
 */
async function takeOver(lockPath, staleIno) {
  const aside = `${lockPath}.${randomUUID()}`;
  try {
    await rename(lockPath, aside);
  } catch {
    return; // gone already: taken over by another process
  }
  const moved = await stat(aside).catch(() => null);
  if (moved !== null && moved.ino !== staleIno) {
    // A live lock: give it back (link fails if yet another lock appeared meanwhile, and
    // then that one holds; the moved one's holder finds its file gone and removes nothing).
    await link(aside, lockPath).catch(() => {});
  }
  await rm(aside, { force: true });
}
