export { MemoryStore, WebStorageStore, IndexedDbStore, sharedAcrossTabs, CredentialStore, StoredCredentials } from './index.js';
/** An in-process lock: callers run one at a time, in the order they asked. */
export declare class Mutex {
  lock<T>(fn: () => T | Promise<T>): Promise<T>;
}
export declare function checkStore<T>(store: T): T;
export declare function checkRecord(record: unknown): import('./index.js').StoredCredentials;
