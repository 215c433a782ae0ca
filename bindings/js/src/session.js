// A session: the host driver (the core and the routing of its commands, written once in
// Rust) with what JavaScript must do itself — promises for the requests that wait, one
// timer, the token endpoint call, the store's I/O. Each event is one call into wasm that
// returns one number (the step packed as reauth_host::wire documents); a step that asks
// more (other requests to wake, a refresh, a logout, a new token) leaves its bytes in the
// out buffer of the same call, read before anything else calls in.

import { native, api } from './instance.js';
import { configJson, configFromJson, credentialParts, requestOptions, stateFrom, statusCode, tokenEndpoint } from './api.js';
import { ClosedError, ReauthError } from './errors.js';
import { integer, text } from './native.js';
import { Token, describe } from './token.js';
import { MemoryStore, checkStore } from './stores.js';

/** The flight recorder's default capacity: the last 64 inputs (at least; fewer than 128). */
export const DEFAULT_FLIGHT_RECORDER = 64;

const OWN_WAIT = 0;
const OWN_SEND = 1;
const OWN_COMPLETE = 2;
const OWN_FAIL = 3;
const MORE = 128;
const DEADLINE = 256;
const WAKE_SEND = 1;
const WAKE_COMPLETE = 2;
const WAKE_FAIL = 3;

const COMPLETE = Object.freeze({ kind: 'complete' });
const CLOSED = Object.freeze({ kind: 'closed' });
const CALLERS_ANSWER = Object.freeze({ kind: 'callers_answer' });
const ABANDONED = Object.freeze({ kind: 'abandoned' });
const FAIL = Object.freeze(Object.fromEntries(api.failReasons.map((r) => [r, Object.freeze({ kind: 'fail', reason: r })])));

// setTimeout's longest delay; a later deadline is re-read when this one fires.
const MAX_DELAY = 2 ** 31 - 1;
const ROUTES_CACHED = 1024;

/** The core's clock: milliseconds since the page or process started (monotonic). */
export function nowMs() {
  return Math.floor(performance.now());
}

/** Warnings and errors to the console; info and debug (a logout's recording) nowhere. */
const DEFAULT_LOGGER = Object.freeze({
  warn: (message) => console.warn(message),
  error: (message) => console.error(message),
});

const drivers = new FinalizationRegistry((handle) => native.x.driver_free(handle));

/**
 * A flight recording: the session's last inputs, the commands each produced and the rule
 * behind each, every token replaced by a placeholder. `json` is a transcript that replays
 * in every reauth replayer (`npx reauth-replay`); `explain()` prints it as a timeline.
 */
export class Recording {
  constructor(json) {
    this.json = json;
  }

  get steps() {
    return JSON.parse(this.json).steps.length;
  }

  toString() {
    return `Recording(${this.steps} inputs)`;
  }
}

/**
 * One signed-in user's session: create it once and hand it to the adapters
 * (`reauth/axios`, `reauth/fetch`).
 *
 * ```js
 * const session = new Session({
 *   tokenEndpoint: { url: 'https://auth.example.com/oauth/token', clientId: 'my-app' },
 *   credentials: { accessToken, refreshToken, expiresInMs: 3600_000 }, // or restore from `store`
 *   store: new WebStorageStore(localStorage, 'my-app'),
 *   onLogout: (reason) => showLogin(reason),
 * });
 * ```
 */
export class Session {
  #handle;
  #endpoint;
  #fetch;
  #store;
  #onLogout;
  #log;
  #recording;
  /** The access token this session holds: its generation (0: none) and text. */
  #generation = 0;
  #token = null;
  #waiters = new Map();
  #timer = null;
  #timerAt = -1;
  #closed = false;
  #routes = new Map();
  /** Counts logins and logouts: a refresh or a restore begun before one does not write. */
  #epoch = 0;
  /** A refresh's result the store refused to save: it outranks the store's older record. */
  #unsaved = null;

  constructor(options = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Session options are an object, not ${describe(options)}`);
    const { tokenEndpoint: endpoint, credentials, store, config, onLogout, flightRecorder = DEFAULT_FLIGHT_RECORDER, fetch: fetchImpl, logger } = options;
    const known = new Set(['tokenEndpoint', 'credentials', 'store', 'config', 'onLogout', 'flightRecorder', 'fetch', 'logger']);
    for (const key of Object.keys(options)) if (!known.has(key)) throw new TypeError(`unknown Session option ${JSON.stringify(key)}`);
    this.#endpoint = tokenEndpoint(endpoint);
    integer(flightRecorder, 'flightRecorder');
    if (flightRecorder > 0xffffffff) throw new RangeError(`flightRecorder must be at most 4294967295, not ${flightRecorder}`);
    if (onLogout !== undefined && typeof onLogout !== 'function') throw new TypeError(`onLogout must be a function, not ${describe(onLogout)}`);
    if (fetchImpl !== undefined && typeof fetchImpl !== 'function') throw new TypeError(`options.fetch must be a function, not ${describe(fetchImpl)}`);
    if (fetchImpl === undefined && typeof globalThis.fetch !== 'function') throw new TypeError('no fetch: pass options.fetch (the token endpoint is called with it)');
    // Called as a plain function: a browser's fetch refuses any `this` but the window.
    this.#fetch = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
    this.#store = checkStore(store ?? new MemoryStore());
    this.#onLogout = onLogout;
    if (logger !== undefined && (typeof logger !== 'object' || logger === null)) throw new TypeError(`options.logger must be an object, not ${describe(logger)}`);
    this.#log = logger ?? DEFAULT_LOGGER;
    const ttlGiven = this.#store.lockTtlMs;
    if (ttlGiven !== undefined && !(typeof ttlGiven === 'number' && ttlGiven > 0)) throw new TypeError(`the store's lockTtlMs must be a positive number of ms, not ${describe(ttlGiven)}`);
    const credentialsGiven = credentials !== undefined && credentials !== null;
    const parts = credentialsGiven ? credentialParts(credentials) : null;
    const [len] = native.put(configJson(config));
    this.#handle = native.call('driver_new', len);
    drivers.register(this, this.#handle, this);
    /** The effective config (defaults filled in), camelCase. */
    this.config = configFromJson(native.outText());
    const ttl = this.#store.lockTtlMs;
    if (typeof ttl === 'number' && ttl <= this.config.refreshTimeoutMs) {
      this.#free();
      throw new RangeError(`the store's lockTtlMs (${ttl}) must exceed the refresh deadline (config.refreshTimeoutMs = ${this.config.refreshTimeoutMs})`);
    }
    this.#recording = flightRecorder > 0;
    if (this.#recording) native.call('driver_record', this.#handle, flightRecorder);
    if (credentialsGiven) {
      // Refused credentials throw here and store nothing.
      let packed;
      try {
        const [a, r] = native.put(parts[0], parts[1]);
        packed = native.call('driver_login', this.#handle, nowMs(), a, r, parts[2], 0);
      } catch (e) {
        this.#free();
        throw e;
      }
      this.#step(packed);
      // Stored under the lock, queued before any refresh can take it. The credentials as
      // checked above, read once (a getter could answer differently the second time).
      const stored = api.storedFromLogin({ accessToken: parts[0], refreshToken: parts[1], expiresInMs: parts[2] < 0 ? null : parts[2] });
      this.ready = this.#locked(() => this.#store.save(stored)).catch((e) => {
        this.#say('error', `reauth: could not store the credentials (${e?.name}: ${e?.message})`);
      });
    } else {
      // Requests wait while the store is read (rule 18).
      this.#step(native.call('driver_tick', this.#handle, 4, nowMs(), 0));
      this.ready = this.#restore();
    }
  }

  async #restore() {
    const epoch = this.#epoch;
    let stored = null;
    try {
      stored = await this.#store.load();
    } catch (e) {
      this.#say('error', `reauth: could not read the credential store (${e?.name}: ${e?.message}); logged out`);
    }
    // Closed, or the app logged in (or out) meanwhile: what was read is older than that.
    if (this.#closed || this.#epoch !== epoch) return;
    try {
      if (stored !== null && stored !== undefined) {
        const c = api.storedToCredentials(stored);
        const [a, r] = native.put(c.accessToken.expose(), c.refreshToken?.expose() ?? null);
        this.#step(native.call('driver_login', this.#handle, nowMs(), a, r, c.expiresInMs ?? -1, this.#generation));
        return;
      }
    } catch (e) {
      this.#say('error', `reauth: the stored credentials were refused (${e?.message}); logged out`);
    }
    this.#step(native.call('driver_tick', this.#handle, 5, nowMs(), this.#generation));
  }

  // ----- a request's events (the adapters' side) ---------------------------------------

  /**
   * A request wants to go out. Returns `{ id, next }`: `next` is what it does now — an
   * event, or a promise of one when it must wait (for a refresh, a restore). Events:
   * `{kind: 'send', token}`, `{kind: 'complete'}`, `{kind: 'fail', reason}`,
   * `{kind: 'callers_answer'}`, `{kind: 'closed'}`, `{kind: 'abandoned'}` (the token is a
   * Token). Throws ClosedError after close().
   */
  submit(options = {}, signal = undefined) {
    const [replayable, refresh, route] = requestOptions(options);
    const packed = native.call('driver_submit', this.#handle, nowMs(), replayable, refresh, route, this.#generation);
    const id = Math.floor(packed / 512);
    return { id, next: this.#own(packed, id, signal) };
  }

  /**
   * The response to request `id`'s last send: its status and its WWW-Authenticate values
   * (read only for a refresh status). Returns the event (or a promise of it).
   */
  response(id, status, wwwAuthenticate = undefined, signal = undefined) {
    integer(id, 'id');
    statusCode(status);
    let packed;
    // The driver reads the challenges only for a refresh status (§12.4).
    if (wwwAuthenticate !== undefined && wwwAuthenticate !== null) {
      const values = Array.from(Array.isArray(wwwAuthenticate) ? wwwAuthenticate : [wwwAuthenticate], (v, i) => text(v, `WWW-Authenticate value ${i}`));
      native.putPrefixed(values);
      packed = native.call('driver_response', this.#handle, nowMs(), id, status, values.length, this.#generation);
    } else {
      packed = native.call('driver_response', this.#handle, nowMs(), id, status, 0, this.#generation);
    }
    return this.#own(packed, id, signal);
  }

  /** Request `id` ends without a response (a transport error, its caller gave up). */
  abandon(id) {
    integer(id, 'id');
    // A caller still waiting is told, so no promise is left pending.
    const waiter = this.#waiters.get(id);
    this.#waiters.delete(id);
    waiter?.(ABANDONED);
    try {
      this.#step(native.call('driver_abandon', this.#handle, nowMs(), id, this.#generation));
    } catch (e) {
      this.#say('error', `reauth: could not end request ${id} (${e?.message})`);
    }
  }

  /** The default route key of a request (rule 20), cached per method, origin and path. */
  route(method, url) {
    text(method, 'the method');
    const u = url instanceof URL ? url : new URL(text(url, 'the URL'));
    const key = `${method.toUpperCase()} ${u.origin}${u.pathname}`;
    let route = this.#routes.get(key);
    if (route === undefined) {
      route = api.defaultRoute(method, u);
      if (this.#routes.size >= ROUTES_CACHED) this.#routes.clear();
      this.#routes.set(key, route);
    }
    return route;
  }

  // ----- the app's controls ------------------------------------------------------------------

  /**
   * Starts a session with credentials the app obtained and stores them — only once the
   * core accepted them: refused credentials reject and change nothing. Under the store's
   * lock, so a refresh never reads the store before they are in it (§12.2).
   */
  async login(credentials) {
    const [at, rt, expires] = credentialParts(credentials);
    const stored = api.storedFromLogin({ accessToken: at, refreshToken: rt, expiresInMs: expires < 0 ? null : expires });
    await this.#locked(async () => {
      const [a, r] = native.put(at, rt);
      // The step is read at once (the out buffer is the next call's); a refresh it starts
      // waits for this lock, so it reads the store after the save below.
      this.#step(native.call('driver_login', this.#handle, nowMs(), a, r, expires, this.#generation));
      this.#epoch++;
      this.#unsaved = null;
      await this.#store.save(stored);
    });
  }

  /** The user logs out: waiting requests fail `logged_out`, the store is cleared. */
  logout() {
    this.#step(native.call('driver_tick', this.#handle, 2, nowMs(), this.#generation));
  }

  /** The app knows the token is bad: the next request refreshes. */
  forceRefresh() {
    this.#step(native.call('driver_tick', this.#handle, 1, nowMs(), this.#generation));
  }

  /** The core's counters. */
  stats() {
    return this.#state().stats;
  }

  isLoggedIn() {
    return this.#state().loggedIn;
  }

  #state() {
    native.call('driver_state', this.#handle);
    return stateFrom(native.outText());
  }

  /** What the flight recorder holds now (no steps when it is off). */
  recording() {
    native.call('driver_trace', this.#handle);
    return new Recording(native.outText());
  }

  /**
   * Ends the session's service: requests waiting end with ClosedError, later ones throw
   * it, the timer stops. The store keeps the credentials.
   */
  close() {
    if (this.#closed) return;
    this.#step(native.call('driver_tick', this.#handle, 3, nowMs(), this.#generation));
    this.#closed = true;
    this.#setTimer(-1);
  }

  /** Logs through the app's logger; a logger that throws changes nothing here. */
  #say(level, message) {
    try {
      this.#log[level]?.(message);
    } catch {
      // The logger's failure is not the session's.
    }
  }

  #free() {
    drivers.unregister(this);
    native.x.driver_free(this.#handle);
  }

  // ----- carrying out a step -------------------------------------------------------------------

  #own(packed, id, signal) {
    const low = packed % 512;
    let tokens = null;
    if (low & MORE) tokens = this.#more();
    if (low & DEADLINE) this.#armTimer();
    switch (low & 7) {
      case OWN_SEND:
        return { kind: 'send', token: tokens?.get(tokens.own) ?? this.#token };
      case OWN_WAIT:
        return this.#wait(id, signal);
      case OWN_COMPLETE:
        return COMPLETE;
      case OWN_FAIL:
        return FAIL[api.failReasons[(low >> 3) & 15]];
      default:
        return CALLERS_ANSWER;
    }
  }

  #step(packed) {
    const low = packed % 512;
    if (low & MORE) this.#more();
    if (low & DEADLINE) this.#armTimer();
  }

  #wait(id, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        this.abandon(id);
        reject(signal.reason);
        return;
      }
      let onAbort = null;
      if (signal !== undefined && signal !== null) {
        onAbort = () => {
          if (this.#waiters.delete(id)) {
            this.abandon(id);
            reject(signal.reason);
          }
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.#waiters.set(id, (event) => {
        if (onAbort !== null) signal.removeEventListener('abort', onAbort);
        resolve(event);
      });
      this.#refTimer();
    });
  }

  /** Reads the step's bytes, then carries them out: the logout, the wakes, the refreshes. */
  #more() {
    // Everything is read before anything calls into wasm again (the logout's recording
    // would overwrite the out buffer).
    const r = native.reader();
    const own = r.u64();
    const nTokens = r.u16();
    const nRefreshes = r.u16();
    const nWakes = r.u32();
    const logout = r.u8();
    const tokens = new Map();
    tokens.own = own;
    for (let i = 0; i < nTokens; i++) {
      const generation = r.u64();
      tokens.set(generation, new Token(r.text()));
    }
    const refreshes = [];
    for (let i = 0; i < nRefreshes; i++) {
      const attempt = r.u64();
      refreshes.push([attempt, r.text()]);
    }
    const wakes = [];
    for (let i = 0; i < nWakes; i++) {
      const id = r.u64();
      const kind = r.u8();
      const code = r.u8();
      const generation = r.u64();
      wakes.push([id, kind, code, generation]);
    }
    for (const [generation, token] of tokens) {
      if (generation > this.#generation) {
        this.#generation = generation;
        this.#token = token;
      }
    }
    if (logout !== 0) this.#loggedOut(api.logoutReasons[logout - 1]);
    for (const [id, kind, code, generation] of wakes) {
      let event;
      if (kind === WAKE_SEND) event = { kind: 'send', token: tokens.get(generation) };
      else if (kind === WAKE_COMPLETE) event = COMPLETE;
      else if (kind === WAKE_FAIL) event = FAIL[api.failReasons[code]];
      else event = CLOSED;
      const waiter = this.#waiters.get(id);
      if (waiter !== undefined) {
        this.#waiters.delete(id);
        waiter(event);
      }
    }
    for (const [attempt, token] of refreshes) {
      this.#refresh(attempt, new Token(token));
    }
    if (nWakes > 0) this.#refTimer();
    return tokens;
  }

  #loggedOut(reason) {
    this.#say('info', `reauth: logged out (${reason})`);
    // A refresh running now sees the epoch move and does not save its result; the clear
    // waits for its lock, so nothing it wrote before survives either.
    this.#epoch++;
    this.#unsaved = null;
    this.#locked(() => this.#store.clear()).catch((e) => this.#say('error', `reauth: could not clear the credential store (${e?.message})`));
    const recording = this.#recording ? this.recording() : null;
    if (recording !== null && reason !== 'requested') {
      this.#say('debug', `reauth: the session ended (${reason}); its flight recording (npx reauth-explain FILE explains it): ${recording.json}`);
    }
    if (this.#onLogout !== undefined) {
      try {
        this.#onLogout(reason, recording ?? this.recording());
      } catch (e) {
        this.#say('error', `reauth: the onLogout callback threw (${e?.message})`);
      }
    }
  }

  // ----- the refresh and the timer ------------------------------------------------------------

  /**
   * §12.2, §12.3: under the store's lock, adopt or follow what the store holds, else call
   * the server; on a rejection, re-read the store once; keep a rotation from an unusable
   * answer; store a success before the lock is released. Reported to the driver after.
   */
  async #refresh(attempt, commandToken) {
    const epoch = this.#epoch;
    let credentials = null;
    let failure = { type: 'transient', retryAfterMs: null };
    try {
      await this.#locked(async () => {
        if (this.#unsaved !== null) {
          // The last result could not be saved: try again, and plan from it either way.
          try {
            await this.#store.save(this.#unsaved);
            this.#unsaved = null;
          } catch (e) {
            this.#say('error', `reauth: the store still refuses the last refresh's credentials (${e?.name}: ${e?.message})`);
          }
        }
        const load = async () => this.#unsaved ?? (await this.#store.load());
        let plan = api.planRefresh(commandToken, await load());
        let followed = false;
        for (;;) {
          if (plan.type === 'adopt') {
            this.#say('info', 'reauth: adopting credentials another tab or process rotated');
            credentials = plan.credentials;
            break;
          }
          const sent = plan.refreshToken;
          const answer = await this.#callEndpoint(sent);
          if (answer.outcome === 'succeeded') {
            if (answer.note !== null) this.#say('warn', `reauth: token response used despite a problem: ${answer.note}`);
            credentials = answer.credentials;
            break;
          }
          if (answer.outcome === 'rejected') {
            this.#say('warn', `reauth: the token endpoint refused the refresh token (${answer.error})`);
            const following = api.afterRejection(sent, await load());
            if (following !== null && !followed) {
              followed = true;
              plan = following;
              continue;
            }
            failure = { type: 'rejected' };
            break;
          }
          this.#say('warn', `reauth: refresh failed (${answer.problemText}); transient`);
          if (answer.rotatedRefreshToken !== null) {
            const kept = api.keepRotation(await load(), answer.rotatedRefreshToken);
            if (kept === null) {
              this.#say('error', 'reauth: a rotated refresh token arrived in an unusable answer and the store holds nothing to keep it with');
            } else {
              try {
                await this.#store.save(kept);
              } catch (e) {
                // Kept here then: the next attempt plans from it, not from the spent token.
                this.#unsaved = kept;
                this.#say('error', `reauth: could not store a rotated refresh token (${e?.name}: ${e?.message}); kept in memory`);
              }
            }
          }
          failure = { type: 'transient', retryAfterMs: answer.retryAfterMs };
          break;
        }
        if (credentials !== null && this.#epoch !== epoch) {
          // The user logged out (or in) while this ran: its result belongs to no session.
          credentials = null;
          return;
        }
        if (credentials !== null) {
          // Visible to other tabs and processes before the lock is released. A failed
          // save does not undo the refresh: the server has rotated, so the session keeps
          // the record and saves it (or plans from it) before its next refresh.
          const record = api.storedFromLogin(credentials);
          try {
            await this.#store.save(record);
          } catch (e) {
            this.#unsaved = record;
            this.#say('error', `reauth: could not store the refreshed credentials (${e?.name}: ${e?.message}); other tabs or processes sharing the store will not see this rotation`);
          }
        }
      });
    } catch (e) {
      this.#say('error', `reauth: refresh attempt ${attempt} failed unexpectedly (${e?.name}: ${e?.message}); reported as transient`);
      credentials = null;
      failure = { type: 'transient', retryAfterMs: null };
    }
    try {
      if (credentials !== null) {
        const [at, rt, expires] = credentialParts(credentials);
        const [a, r] = native.put(at, rt);
        try {
          this.#step(native.call('driver_refresh_succeeded', this.#handle, nowMs(), attempt, a, r, expires, this.#generation));
          return;
        } catch (e) {
          // Credentials the core refuses (a store holding garbage): the attempt failed.
          if (e?.kind !== 'invalid_credentials') throw e;
          this.#say('error', `reauth: refresh attempt ${attempt} produced credentials the core refuses (${e.message}); reported as transient`);
        }
        this.#step(native.call('driver_refresh_failed', this.#handle, nowMs(), attempt, 0, -1, this.#generation));
      } else {
        const rejected = failure.type === 'rejected' ? 1 : 0;
        const retry = failure.retryAfterMs ?? -1;
        this.#step(native.call('driver_refresh_failed', this.#handle, nowMs(), attempt, rejected, retry, this.#generation));
      }
    } catch (e) {
      // Closed, or an attempt the core gave up on (its deadline passed): nothing waits.
      if (!(e instanceof ReauthError)) {
        this.#say('error', `reauth: refresh attempt ${attempt} could not be reported (${e?.name}: ${e?.message})`);
        return;
      }
      this.#say('debug', `reauth: refresh attempt ${attempt} reported late (${e.message})`);
    }
  }

  /**
   * One call to the token endpoint within the refresh deadline — its own timer, so a
   * fetch that ignores its signal cannot hold the store's lock for ever.
   */
  #callEndpoint(refreshToken) {
    let timer;
    const deadline = new Promise((resolve) => {
      timer = setTimeout(() => resolve(transient('no answer within the refresh deadline')), this.config.refreshTimeoutMs);
    });
    // Requests that wait keep Node alive through the core's timer; this one alone must not.
    timer.unref?.();
    return Promise.race([this.#exchange(refreshToken), deadline]).finally(() => clearTimeout(timer));
  }

  /** The call and its answer, read by the host layer within its limit. */
  async #exchange(refreshToken) {
    const request = api.tokenRequest(this.#endpoint, refreshToken);
    const limit = api.maxTokenResponseBytes;
    let response;
    try {
      response = await this.#fetch(request.url, {
        method: 'POST',
        headers: request.headers,
        body: request.body,
        cache: 'no-store',
        redirect: 'error',
        signal: AbortSignal.timeout(this.config.refreshTimeoutMs),
      });
      if (typeof response?.status !== 'number' || typeof response.headers?.get !== 'function') {
        return transient('the fetch given did not return a Response');
      }
    } catch (e) {
      return transient(`token endpoint unreachable (${e?.name}: ${e?.message}${e?.cause?.code ? `, ${e.cause.code}` : ''})`);
    }
    const chunks = [];
    let size = 0;
    try {
      const reader = response.body?.getReader();
      while (reader !== undefined) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        size += value.length;
        if (size > limit) {
          await reader.cancel().catch(() => {});
          break;
        }
      }
    } catch (e) {
      // The body broke off. A 200's bytes so far are still read: a rotation that arrived
      // before the cut is kept (contract §12.3).
      if (response.status !== 200) return transient(`token response broke off (${e?.name})`);
    }
    const body = new Uint8Array(Math.min(size, limit + 1));
    let at = 0;
    for (const chunk of chunks) {
      if (at >= body.length) break;
      const part = chunk.subarray(0, body.length - at);
      body.set(part, at);
      at += part.length;
    }
    return api.readTokenResponse(response.status, response.headers.get('retry-after'), body, refreshToken);
  }

  #armTimer() {
    if (this.#closed) return;
    this.#setTimer(native.call('driver_deadline', this.#handle));
  }

  #setTimer(deadline) {
    if (deadline === this.#timerAt && this.#timer !== null) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = deadline;
    if (deadline < 0) return;
    const delay = Math.min(Math.max(0, deadline - nowMs()), MAX_DELAY);
    this.#timer = setTimeout(() => this.#fire(), delay);
    this.#refTimer();
  }

  /** In Node, the timer keeps the process alive only while requests wait. */
  #refTimer() {
    const timer = this.#timer;
    if (timer === null || typeof timer !== 'object') return;
    if (this.#waiters.size > 0) timer.ref?.();
    else timer.unref?.();
  }

  #fire() {
    this.#timer = null;
    this.#timerAt = -1;
    if (this.#closed) return;
    try {
      const deadline = native.call('driver_deadline', this.#handle);
      const now = nowMs();
      if (deadline >= 0 && deadline <= now) this.#step(native.call('driver_tick', this.#handle, 0, now, this.#generation));
      this.#armTimer();
    } catch (e) {
      if (!(e instanceof ClosedError)) this.#say('error', `reauth: the timer stopped (${e?.name}: ${e?.message})`);
    }
  }

  /** `fn` under the store's lock, whatever the store's lock returns (or throws). */
  async #locked(fn) {
    return await this.#store.lock(fn);
  }
}

function transient(problemText) {
  return { outcome: 'transient', retryAfterMs: null, problem: 'transport', problemText, rotatedRefreshToken: null };
}
