import type { CredentialStore, StoredCredentials } from './index.js';

/** The record in a 0600 JSON file, replaced atomically, with a lock file for processes of one machine. */
export declare class FileStore implements CredentialStore {
  constructor(path: string, options?: { lockTtlMs?: number; lockWaitMs?: number });
  readonly lockTtlMs: number;
  readonly lockWaitMs: number;
  load(): Promise<StoredCredentials | null>;
  save(record: StoredCredentials): Promise<void>;
  clear(): Promise<void>;
  lock<T>(fn: () => T | Promise<T>): Promise<T>;
}
