// Types of the `reauth` package (ES module). The core's contract: docs/contract.md.

/** A secret (an access or refresh token) that never prints; `expose()` is its text. */
export declare class Token {
  constructor(text: string);
  /** The token text: call it only to send the token or to store it. */
  expose(): string;
  readonly length: number;
  equals(other: Token | string): boolean;
  toString(): 'Token(redacted)';
  toJSON(): '[redacted]';
}

/** Every error reauth raises itself; `kind` is the transcripts' snake_case name. */
export declare class ReauthError extends Error {
  readonly kind: string;
}
/** The host misused an input (contract §8); nothing changed. */
export declare class InputError extends ReauthError {
  readonly kind: 'unknown_request' | 'not_in_flight' | 'unknown_attempt' | 'invalid_credentials' | 'invalid_status' | 'invalid_time';
}
/** A config out of range. */
export declare class ConfigError extends ReauthError {
  readonly kind: 'config';
}
/** The session was closed: the request was not sent, or its wait ended. */
export declare class ClosedError extends ReauthError {
  readonly kind: 'closed';
}
/** A file that is not a transcript, or one that does not replay. */
export declare class TranscriptError extends ReauthError {
  readonly kind: 'invalid_transcript' | 'transcript_mismatch';
}
/** A request reauth failed instead of sending (contract §6, `Fail`). */
export declare class RequestFailedError extends ReauthError {
  readonly reason: FailReason;
  /** The last response the request got, if it got one (axios: an AxiosResponse; fetch: a Response, its body unread). */
  readonly response?: unknown;
}

export type FailReason =
  | 'not_logged_in'
  | 'logged_out'
  | 'refresh_rejected'
  | 'refresh_unavailable'
  | 'excessive_refresh'
  | 'unauthorized'
  | 'queue_full'
  | 'wait_timeout'
  | 'transport';
export type LogoutReason = 'requested' | 'refresh_rejected' | 'no_refresh_token' | 'excessive_refresh';

/** The core's config (contract §8), every field optional; defaults in docs/contract.md. */
export interface Config {
  refreshStatuses?: number[];
  expirySkewMs?: number;
  minTokenAgeMs?: number;
  maxReplaysPerRequest?: number;
  refreshWindow?: { maxRefreshes?: number; windowMs?: number };
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  maxRetries?: number;
  refreshTimeoutMs?: number;
  maxPending?: number;
  maxWaitMs?: number;
}

export interface Credentials {
  accessToken: string | Token;
  refreshToken?: string | Token | null;
  /** The access token's lifetime from now, in ms; null: unknown (used until a 401). */
  expiresInMs?: number | null;
}

/** Credentials as the core hands them out (tokens as Token). */
export interface IssuedCredentials {
  accessToken: Token;
  refreshToken: Token | null;
  expiresInMs: number | null;
}

export interface RequestOptions {
  /** false for a body that cannot be sent twice: its 401 is the caller's (rule 14). */
  replayable?: boolean;
  /** false for a call whose refusal must not touch the session (rule 19). */
  refresh?: boolean;
  /** A non-zero 32-bit route key (rule 20); see routeKey(). */
  route?: number;
}

export type RefreshFailure = 'rejected' | 'transient' | { type: 'rejected' } | { type: 'transient'; retryAfterMs?: number | null };

export type Command =
  | { type: 'send' | 'replay'; id: number; accessToken: Token; generation: number }
  | { type: 'refresh'; attempt: number; refreshToken: Token }
  | { type: 'store_credentials'; credentials: IssuedCredentials; generation: number; expiresAt: number | null }
  | { type: 'complete'; id: number }
  | { type: 'fail'; id: number; reason: FailReason }
  | { type: 'logout'; reason: LogoutReason };

export interface CoordinatorState {
  stats: Stats;
  now: number;
  loggedIn: boolean;
  generation: number | null;
  refreshing: boolean;
  restoring: boolean;
  waiting: number;
  open: number;
  /** The effective config, as the core writes it (snake_case). */
  config: Record<string, unknown>;
}

/** The core's counters (snake_case, as every binding names them). */
export type Stats = Record<string, number | Record<string, number>>;

/**
 * The reauth core: events in, commands out. Every input returns its batch; a refused
 * input throws and changes nothing. Times are milliseconds on the host's clock.
 */
export declare class Coordinator {
  /** `config`: an object (camelCase) or the core's JSON text (snake_case, as transcripts write it). */
  constructor(config?: Config | string);
  login(now: number, credentials: Credentials): Command[];
  submit(now: number, options?: RequestOptions): { id: number; commands: Command[] };
  handleResponse(now: number, id: number, status: number): Command[];
  handleTransportError(now: number, id: number): Command[];
  cancel(now: number, id: number): Command[];
  handleRefreshSucceeded(now: number, attempt: number, credentials: Credentials): Command[];
  handleRefreshFailed(now: number, attempt: number, failure: RefreshFailure): Command[];
  handleTimeout(now: number): Command[];
  forceRefresh(now: number): Command[];
  logout(now: number): Command[];
  beginRestore(now: number): Command[];
  restoreFailed(now: number): Command[];
  /** The next deadline (call handleTimeout then), or null. */
  pollTimeout(): number | null;
  state(): CoordinatorState;
  stats(): Stats;
  isLoggedIn(): boolean;
  /** Starts the flight recorder for the last `capacity` inputs (0 stops it). */
  record(capacity: number): void;
  /** The flight recording as a transcript (tests/vectors format, tokens redacted). */
  trace(): Record<string, unknown>;
  /** The recording as a timeline with the rule behind each command. */
  explain(): string;
  /** The causes of the last input's commands ("7.9", "answered", "logged_in"). */
  lastCauses(): string[];
  /** Frees the core now (otherwise when it is garbage-collected). */
  free(): void;
}

// ----- the host layer (contract §12) -----------------------------------------------------

export interface TokenEndpoint {
  url: string | URL;
  clientId: string | Token;
  clientSecret?: string | Token | null;
  /** Where the client secret goes (RFC 6749 §2.3.1). Default 'body'. */
  auth?: 'body' | 'basic';
}

/** A stored record: tokens as strings, expiresAt in wall-clock ms or null. */
export interface StoredCredentials {
  accessToken: string;
  refreshToken: string | null;
  expiresAt: number | null;
}

export type TokenAnswer =
  | { outcome: 'succeeded'; credentials: IssuedCredentials; note: string | null }
  | { outcome: 'rejected'; error: string }
  | { outcome: 'transient'; retryAfterMs: number | null; problem: string; problemText: string; rotatedRefreshToken: Token | null };

export type RefreshPlan = { type: 'adopt'; credentials: IssuedCredentials } | { type: 'call'; refreshToken: Token };

export declare const failReasons: readonly FailReason[];
export declare const logoutReasons: readonly LogoutReason[];
/** The largest token-endpoint body read; a longer one is refused as endless. */
export declare const maxTokenResponseBytes: number;
export declare function tokenRequest(endpoint: TokenEndpoint, refreshToken: string | Token): { url: string; headers: Record<string, string>; body: string };
export declare function readTokenResponse(status: number, retryAfter: string | null, body: Uint8Array | string, sentRefreshToken: string | Token, wallNow?: number): TokenAnswer;
export declare function planRefresh(commandToken: string | Token, stored: StoredCredentials | null, wallNow?: number): RefreshPlan;
export declare function afterRejection(sent: string | Token, stored: StoredCredentials | null, wallNow?: number): RefreshPlan | null;
export declare function keepRotation(stored: StoredCredentials | null, rotated: string | Token): StoredCredentials | null;
export declare function storedFromLogin(credentials: Credentials, wallNow?: number): StoredCredentials;
export declare function storedToCredentials(stored: StoredCredentials, wallNow?: number): IssuedCredentials;
export declare function bearerError(values: string | string[]): 'invalid_token' | 'insufficient_scope' | 'invalid_request' | 'other' | null;
export declare function isCallersAnswer(values: string | string[]): boolean;
export declare function retryAfterMs(value: string, wallNow?: number): number | null;
export declare function defaultRoute(method: string, url: string | URL | { scheme: string; host: string; port: number | null; path: string }): number;
export declare function defaultRoute(method: string, url: string | URL | { scheme: string; host: string; port: number | null; path: string }, options: { name: true }): { key: number; name: string };
export declare function routeKey(name: string): number;

// ----- stores and the session -------------------------------------------------------------

/** A credential store (§12.1–§12.2); any method may return a promise. */
export interface CredentialStore {
  load(): StoredCredentials | null | Promise<StoredCredentials | null>;
  save(record: StoredCredentials): void | Promise<void>;
  clear(): void | Promise<void>;
  /** Runs `fn` while no other holder of the same lock runs. */
  lock<T>(fn: () => T | Promise<T>): Promise<T>;
  /** A lock that expires must outlive the refresh deadline. */
  readonly lockTtlMs?: number;
}

export declare class MemoryStore implements CredentialStore {
  load(): StoredCredentials | null;
  save(record: StoredCredentials): void;
  clear(): void;
  lock<T>(fn: () => T | Promise<T>): Promise<T>;
}

export declare class WebStorageStore implements CredentialStore {
  constructor(storage: Storage, key?: string);
  load(): StoredCredentials | null;
  save(record: StoredCredentials): void;
  clear(): void;
  lock<T>(fn: () => T | Promise<T>): Promise<T>;
}

/** The record in IndexedDB, one transaction per call: coherent across the tabs of an origin. */
export declare class IndexedDbStore implements CredentialStore {
  constructor(name?: string, key?: string, options?: { indexedDB?: IDBFactory });
  load(): Promise<StoredCredentials | null>;
  save(record: StoredCredentials): Promise<void>;
  clear(): Promise<void>;
  lock<T>(fn: () => T | Promise<T>): Promise<T>;
}

/** The §12.2 recipe across the tabs of one origin (Web Locks + BroadcastChannel); `store`: an IndexedDbStore (a WebStorageStore is refused). */
export declare function sharedAcrossTabs(
  store: CredentialStore,
  name?: string,
  options?: { locks?: LockManager; onChange?: (message: 'saved' | 'cleared') => void },
): CredentialStore & { close(): void };

/** A flight recording: `json` is a transcript that replays (`npx reauth-replay`). */
export declare class Recording {
  readonly json: string;
  readonly steps: number;
}

export type Event =
  | { kind: 'send'; token: Token }
  | { kind: 'complete' }
  | { kind: 'fail'; reason: FailReason }
  | { kind: 'callers_answer' }
  | { kind: 'closed' }
  /** abandon(id) was called while the request waited. */
  | { kind: 'abandoned' };

export interface SessionOptions {
  tokenEndpoint: TokenEndpoint;
  /** Credentials the app obtained; without them the session restores from `store`. */
  credentials?: Credentials | null;
  store?: CredentialStore;
  config?: Config;
  onLogout?: (reason: LogoutReason, recording: Recording) => void;
  /** The flight recorder's capacity (inputs); 0 turns it off. Default 64. */
  flightRecorder?: number;
  /** The fetch the token endpoint is called with. Default globalThis.fetch. */
  fetch?: typeof fetch;
  logger?: { debug?(m: string): void; info?(m: string): void; warn?(m: string): void; error?(m: string): void };
}

export declare const DEFAULT_FLIGHT_RECORDER: 64;
/** The core's clock: ms since the page or process started. */
export declare function nowMs(): number;

/** One signed-in user's session, for the adapters (reauth/axios, reauth/fetch). */
export declare class Session {
  constructor(options: SessionOptions);
  /** Settles when the credentials are stored (or the store was read). */
  readonly ready: Promise<void>;
  /** The effective config. */
  readonly config: Required<Config>;
  submit(options?: RequestOptions, signal?: AbortSignal): { id: number; next: Event | Promise<Event> };
  response(id: number, status: number, wwwAuthenticate?: string | string[], signal?: AbortSignal): Event | Promise<Event>;
  abandon(id: number): void;
  route(method: string, url: string | URL): number;
  login(credentials: Credentials): Promise<void>;
  logout(): void;
  forceRefresh(): void;
  stats(): Stats;
  isLoggedIn(): boolean;
  recording(): Recording;
  close(): void;
}
