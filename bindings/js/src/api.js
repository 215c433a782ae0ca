// The core and the host layer over one wasm instance: `bind(native)` returns the classes
// and functions `index.js` exports (and `tools.js`, over the tools' instance). Every
// argument is checked here first; the core refuses what it refuses (its message, its
// kind) and a refused input changes nothing.

import { Token, describe } from './token.js';
import { integer, optionalInteger, text, optionalText, boolean } from './native.js';

const KIND = ['', 'send', 'replay', 'refresh', 'store_credentials', 'complete', 'fail', 'logout'];

const CONFIG_FIELDS = {
  refreshStatuses: 'refresh_statuses',
  expirySkewMs: 'expiry_skew_ms',
  minTokenAgeMs: 'min_token_age_ms',
  maxReplaysPerRequest: 'max_replays_per_request',
  refreshWindow: 'refresh_window',
  initialBackoffMs: 'initial_backoff_ms',
  maxBackoffMs: 'max_backoff_ms',
  maxRetries: 'max_retries',
  refreshTimeoutMs: 'refresh_timeout_ms',
  maxPending: 'max_pending',
  maxWaitMs: 'max_wait_ms',
};

/**
 * A config (camelCase, every field optional: `{ maxRetries: 3, refreshWindow: {
 * maxRefreshes: 5, windowMs: 60000 } }`) as the core reads it (snake_case JSON). Unknown
 * fields and values that are not non-negative integers are refused here; ranges by the
 * core.
 */
export function configJson(config) {
  if (config === undefined || config === null) return '{}';
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw new TypeError(`a config is an object, not ${describe(config)}`);
  }
  const out = {};
  for (const [key, value] of Object.entries(config)) {
    const field = CONFIG_FIELDS[key];
    if (field === undefined) throw new TypeError(`unknown config field ${JSON.stringify(key)}`);
    if (value === undefined) continue;
    if (key === 'refreshStatuses') {
      if (!Array.isArray(value)) throw new TypeError(`config.refreshStatuses must be an array, not ${describe(value)}`);
      out[field] = value.map((s, i) => integer(s, `config.refreshStatuses[${i}]`));
    } else if (key === 'refreshWindow') {
      if (typeof value !== 'object' || value === null) {
        throw new TypeError(`config.refreshWindow must be an object, not ${describe(value)}`);
      }
      const window = {};
      for (const [k, v] of Object.entries(value)) {
        if (k === 'maxRefreshes') window.max_refreshes = integer(v, 'config.refreshWindow.maxRefreshes');
        else if (k === 'windowMs') window.window_ms = integer(v, 'config.refreshWindow.windowMs');
        else throw new TypeError(`unknown config field ${JSON.stringify(`refreshWindow.${k}`)}`);
      }
      out[field] = window;
    } else {
      out[field] = integer(value, `config.${key}`);
    }
  }
  return JSON.stringify(out);
}

/** The core's config JSON (snake_case) as a JavaScript config (camelCase). */
export function configFromJson(json) {
  const raw = JSON.parse(json);
  const out = {};
  for (const [key, field] of Object.entries(CONFIG_FIELDS)) {
    if (key === 'refreshWindow') {
      out[key] = { maxRefreshes: raw[field].max_refreshes, windowMs: raw[field].window_ms };
    } else {
      out[key] = raw[field];
    }
  }
  return out;
}

/** Credentials: `{ accessToken, refreshToken?, expiresInMs? }`, tokens as strings or Tokens. */
export function credentialParts(credentials) {
  if (typeof credentials !== 'object' || credentials === null) {
    throw new TypeError(`credentials are an object, not ${describe(credentials)}`);
  }
  for (const key of Object.keys(credentials)) {
    if (key !== 'accessToken' && key !== 'refreshToken' && key !== 'expiresInMs') {
      throw new TypeError(`unknown credentials field ${JSON.stringify(key)}`);
    }
  }
  return [
    text(credentials.accessToken, 'credentials.accessToken'),
    optionalText(credentials.refreshToken, 'credentials.refreshToken'),
    optionalInteger(credentials.expiresInMs, 'credentials.expiresInMs'),
  ];
}

/** `{type: 'rejected'}` or `{type: 'transient', retryAfterMs?}` as (rejected, retry). */
function failureParts(failure) {
  if (failure === 'rejected' || failure?.type === 'rejected') return [1, -1];
  if (failure === 'transient') return [0, -1];
  if (failure?.type === 'transient') return [0, optionalInteger(failure.retryAfterMs, 'failure.retryAfterMs')];
  throw new TypeError(`a refresh failure is {type: 'rejected'} or {type: 'transient', retryAfterMs}, not ${describe(failure)}`);
}

function credentialsFrom(r) {
  const accessToken = new Token(r.text());
  const refresh = r.optText();
  return {
    accessToken,
    refreshToken: refresh === null ? null : new Token(refresh),
    expiresInMs: r.opt(),
  };
}

function storedFrom(r) {
  if (r.u8() === 0) return null;
  const accessToken = r.text();
  const refreshToken = r.optText();
  return { accessToken, refreshToken, expiresAt: r.opt() };
}

function storedParts(stored) {
  if (stored === null || stored === undefined) return [null, null, -1];
  if (typeof stored !== 'object') throw new TypeError(`stored credentials are an object, not ${describe(stored)}`);
  const expiresAt = stored.expiresAt;
  if (expiresAt !== null && expiresAt !== undefined && !(typeof expiresAt === 'number' && Number.isFinite(expiresAt))) {
    throw new TypeError(`stored.expiresAt must be a number of milliseconds or null, not ${describe(expiresAt)}`);
  }
  return [
    text(stored.accessToken, 'stored.accessToken'),
    optionalText(stored.refreshToken, 'stored.refreshToken'),
    expiresAt === null || expiresAt === undefined ? -1 : Math.max(0, Math.floor(expiresAt)),
  ];
}

function planFrom(r) {
  const kind = r.u8();
  if (kind === 0) return null;
  if (kind === 1) return { type: 'adopt', credentials: credentialsFrom(r) };
  return { type: 'call', refreshToken: new Token(r.text()) };
}

/** The classes and functions over one instance of the module. */
export function bind(native) {
  const failReasons = JSON.parse((native.call('reason_names', 0), native.outText()));
  const logoutReasons = JSON.parse((native.call('reason_names', 1), native.outText()));
  const maxTokenResponseBytes = native.x.reauth_limit(0);
  const cores = new FinalizationRegistry((handle) => native.x.core_free(handle));

  /** Decodes the batch an input wrote out. */
  function commands() {
    const r = native.reader();
    const n = r.u32();
    const batch = new Array(n);
    for (let i = 0; i < n; i++) {
      const type = KIND[r.u8()];
      switch (type) {
        case 'send':
        case 'replay': {
          const id = r.f64();
          const generation = r.f64();
          batch[i] = { type, id, accessToken: new Token(r.text()), generation };
          break;
        }
        case 'refresh': {
          const attempt = r.f64();
          batch[i] = { type, attempt, refreshToken: new Token(r.text()) };
          break;
        }
        case 'store_credentials': {
          const generation = r.f64();
          const credentials = credentialsFrom(r);
          batch[i] = { type, credentials, generation, expiresAt: r.opt() };
          break;
        }
        case 'complete':
          batch[i] = { type, id: r.f64() };
          break;
        case 'fail': {
          const id = r.f64();
          batch[i] = { type, id, reason: failReasons[r.u8()] };
          break;
        }
        default:
          batch[i] = { type: 'logout', reason: logoutReasons[r.u8()] };
      }
    }
    return batch;
  }

  /**
   * The reauth core (docs/contract.md): events in, commands out. Every input returns
   * its batch of commands as plain objects (`{type: 'send', id, accessToken,
   * generation}`, …; tokens as {@link Token}); a refused input throws and changes
   * nothing. Times are milliseconds on a clock of the host's choosing.
   */
  class Coordinator {
    #handle;

    constructor(config = {}, _resumed = undefined) {
      if (_resumed !== undefined) {
        this.#handle = _resumed;
      } else {
        // A config object (camelCase), or the core's JSON text (snake_case, as transcripts write it).
        const [len] = native.put(typeof config === 'string' ? text(config, 'the config') : configJson(config));
        this.#handle = native.call('core_new', len);
      }
      cores.register(this, this.#handle, this);
    }

    /** A coordinator resumed from a flight recording's `start` (tools only). */
    static resume(config, start) {
      if (native.x.core_resume === undefined) {
        throw new TypeError('Coordinator.resume is in reauth/tools (the module browsers load leaves it out)');
      }
      const startJson = typeof start === 'string' ? start : JSON.stringify(start);
      const [c, s] = native.put(typeof config === 'string' ? config : configJson(config), text(startJson, 'start'));
      return new Coordinator(undefined, native.call('core_resume', c, s));
    }

    #input(name, ...args) {
      native.call(name, this.#handle, ...args);
      return commands();
    }

    login(now, credentials) {
      const [at, rt, expires] = credentialParts(credentials);
      integer(now, 'now');
      const [a, r] = native.put(at, rt);
      return this.#input('core_login', now, a, r, expires);
    }

    /** `options`: `{ replayable = true, refresh = true, route }` (route: a non-zero 32-bit key, see {@link routeKey}). Returns `{ id, commands }`. */
    submit(now, options = {}) {
      integer(now, 'now');
      const [replayable, refresh, route] = requestOptions(options);
      const id = native.call('core_submit', this.#handle, now, replayable, refresh, route);
      return { id, commands: commands() };
    }

    handleResponse(now, id, status) {
      return this.#input('core_response', integer(now, 'now'), integer(id, 'id'), statusCode(status));
    }

    handleTransportError(now, id) {
      return this.#input('core_transport_error', integer(now, 'now'), integer(id, 'id'));
    }

    cancel(now, id) {
      return this.#input('core_cancel', integer(now, 'now'), integer(id, 'id'));
    }

    handleRefreshSucceeded(now, attempt, credentials) {
      integer(now, 'now');
      integer(attempt, 'attempt');
      const [at, rt, expires] = credentialParts(credentials);
      const [a, r] = native.put(at, rt);
      return this.#input('core_refresh_succeeded', now, attempt, a, r, expires);
    }

    handleRefreshFailed(now, attempt, failure) {
      integer(now, 'now');
      integer(attempt, 'attempt');
      const [rejected, retry] = failureParts(failure);
      return this.#input('core_refresh_failed', now, attempt, rejected, retry);
    }

    handleTimeout(now) {
      return this.#input('core_tick', 0, integer(now, 'now'));
    }

    forceRefresh(now) {
      return this.#input('core_tick', 1, integer(now, 'now'));
    }

    logout(now) {
      return this.#input('core_tick', 2, integer(now, 'now'));
    }

    beginRestore(now) {
      return this.#input('core_tick', 3, integer(now, 'now'));
    }

    restoreFailed(now) {
      return this.#input('core_tick', 4, integer(now, 'now'));
    }

    /** The next deadline (call handleTimeout then), or null. */
    pollTimeout() {
      const t = native.call('core_poll_timeout', this.#handle);
      return t < 0 ? null : t;
    }

    /** `{ stats, now, loggedIn, generation, refreshing, restoring, waiting, open, config }`. */
    state() {
      native.call('core_state', this.#handle);
      return stateFrom(native.outText());
    }

    stats() {
      return this.state().stats;
    }

    isLoggedIn() {
      return this.state().loggedIn;
    }

    /** Starts the flight recorder for the last `capacity` inputs (0 stops it). */
    record(capacity) {
      native.call('core_record', this.#handle, capacity32(capacity));
    }

    /** The flight recording as a transcript (tests/vectors format, tokens redacted). */
    trace() {
      native.call('core_trace', this.#handle, 0);
      return JSON.parse(native.outText());
    }

    /** The recording as a timeline with the rule behind each command. */
    explain() {
      native.call('core_trace', this.#handle, 1);
      return native.outText();
    }

    /** The causes of the last input's commands (`"7.9"`, `"answered"`, `"logged_in"`). */
    lastCauses() {
      native.call('core_trace', this.#handle, 2);
      return JSON.parse(native.outText());
    }

    /** Frees the core now (otherwise when it is garbage-collected); later calls throw. */
    free() {
      if (this.#handle === 0) return;
      cores.unregister(this);
      native.x.core_free(this.#handle);
      this.#handle = 0; // never a handle: every later call is refused
    }
  }

  // ----- the host layer (contract §12) ----------------------------------------------------

  /** The refresh call for `refreshToken` (RFC 6749 §6): `{ url, headers, body }`. */
  function tokenRequest(endpoint, refreshToken) {
    const { url, clientId, clientSecret, auth } = tokenEndpoint(endpoint);
    const [u, c, s, r] = native.put(url, clientId, clientSecret, text(refreshToken, 'the refresh token'));
    native.call('token_request', u, c, s, auth === 'basic' ? 1 : 0, r);
    const reader = native.reader();
    const headers = {};
    for (let n = reader.u32(); n > 0; n--) {
      const name = reader.text();
      headers[name] = reader.text();
    }
    return { url, headers, body: reader.text() };
  }

  /**
   * The token endpoint's answer, read (RFC 6749 §5; contract §12.3): `{ outcome:
   * 'succeeded', credentials, note }`, `{ outcome: 'rejected', error }` or `{ outcome:
   * 'transient', retryAfterMs, problem, problemText, rotatedRefreshToken }`. `body`: at
   * most `maxTokenResponseBytes + 1` bytes (a longer body is refused as endless).
   */
  function readTokenResponse(status, retryAfter, body, sentRefreshToken, wallNow = Date.now()) {
    const wall = wallClock(wallNow);
    if (!Number.isInteger(status)) throw new TypeError(`status must be an integer, not ${describe(status)}`);
    if (!(body instanceof Uint8Array)) {
      body = typeof body === 'string' ? new TextEncoder().encode(body) : body;
      if (!(body instanceof Uint8Array)) throw new TypeError(`the body is a Uint8Array or a string, not ${describe(body)}`);
    }
    if (body.length > maxTokenResponseBytes + 1) body = body.subarray(0, maxTokenResponseBytes + 1);
    const st = status >= 0 && status <= 65535 ? status : 0;
    const [ra, b, s] = native.put(optionalText(retryAfter, 'Retry-After'), body, text(sentRefreshToken, 'the refresh token sent'));
    native.call('read_token_response', st, ra, b, s, wall);
    const r = native.reader();
    switch (r.u8()) {
      case 0: {
        const credentials = credentialsFrom(r);
        return { outcome: 'succeeded', credentials, note: r.optText() };
      }
      case 1:
        return { outcome: 'rejected', error: r.text() };
      default: {
        const retryAfterMs = r.opt();
        const problem = r.text();
        const problemText = r.text();
        const rotated = r.optText();
        return {
          outcome: 'transient',
          retryAfterMs,
          problem,
          problemText,
          rotatedRefreshToken: rotated === null ? null : new Token(rotated),
        };
      }
    }
  }

  function recipe(what, token, stored, wallNow) {
    const wall = wallClock(wallNow);
    const [at, rt, expires] = storedParts(stored);
    const [t, a, r] = native.put(token === null ? null : text(token, 'the refresh token'), at, rt);
    native.call('store_recipe', what, t, a, r, expires, wall);
    return native.reader();
  }

  /**
   * Under the store's lock (§12.2): adopt what a sibling stored (`{type: 'adopt',
   * credentials}`) or call the server with this refresh token (`{type: 'call',
   * refreshToken}`). Stored records: `{ accessToken, refreshToken, expiresAt }`
   * (strings; expiresAt in wall-clock ms or null).
   */
  function planRefresh(commandToken, stored, wallNow = Date.now()) {
    return planFrom(recipe(0, commandToken, stored, wallNow));
  }

  /** After a rejection, what the store offers instead (§12.2), or null. */
  function afterRejection(sent, stored, wallNow = Date.now()) {
    return planFrom(recipe(1, sent, stored, wallNow));
  }

  /** The record that keeps a rotated refresh token from an unusable answer (§12.3), or null. */
  function keepRotation(stored, rotated) {
    return storedFrom(recipe(2, rotated, stored, 0));
  }

  /** What to store for credentials just obtained. */
  function storedFromLogin(credentials, wallNow = Date.now()) {
    const wall = wallClock(wallNow);
    const [at, rt, expires] = credentialParts(credentials);
    const [a, r] = native.put(at, rt);
    native.call('store_recipe', 3, -1, a, r, expires, wall);
    return storedFrom(native.reader());
  }

  /** The credentials a stored record restores (its lifetime left). */
  function storedToCredentials(stored, wallNow = Date.now()) {
    if (stored === null || stored === undefined) throw new TypeError('no stored credentials');
    return credentialsFrom(recipe(4, null, stored, wallNow));
  }

  const BEARER = [null, 'invalid_token', 'insufficient_scope', 'invalid_request', 'other'];

  /** The RFC 6750 error of a refusal's WWW-Authenticate values, or null. */
  function bearerError(values) {
    const list = headerValues(values);
    native.putPrefixed(list);
    return BEARER[native.call('bearer_error', list.length)];
  }

  /** Whether a refusal carrying these challenges is the caller's answer (§12.4). */
  function isCallersAnswer(values) {
    return bearerError(values) === 'insufficient_scope';
  }

  /** A Retry-After value in milliseconds (delta-seconds or an HTTP-date), or null. */
  function retryAfterMs(value, wallNow = Date.now()) {
    const wall = wallClock(wallNow);
    const [len] = native.put(text(value, 'Retry-After'));
    const ms = native.call('retry_after_ms', len, wall);
    return ms < 0 ? null : ms;
  }

  /**
   * The default route key of a request (rule 20): its method, origin and path. `url`:
   * an absolute URL (string or URL), or its parts `{ scheme, host, port, path }`. With
   * `name`, returns `{ key, name }`.
   */
  function defaultRoute(method, url, options = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`defaultRoute's options are an object, not ${describe(options)}`);
    const name = options.name === true;
    let scheme;
    let host;
    let port;
    let path;
    if (typeof url === 'object' && url !== null && !(url instanceof URL)) {
      // The parts as they are: { scheme, host, port (null: the scheme's own), path }.
      scheme = text(url.scheme, 'url.scheme');
      host = text(url.host, 'url.host');
      port = url.port === null || url.port === undefined ? -1 : integer(url.port, 'url.port');
      if (port > 65535) throw new RangeError(`url.port must be a port number, not ${port}`);
      path = text(url.path, 'url.path');
    } else {
      const u = url instanceof URL ? url : new URL(text(url, 'the URL'));
      scheme = u.protocol.slice(0, -1);
      host = u.hostname;
      port = u.port === '' ? -1 : Number(u.port);
      path = u.pathname;
    }
    const [m, s, h, p] = native.put(text(method, 'the method'), scheme, host, path);
    const key = native.call('default_route', m, s, h, port, p, name ? 1 : 0);
    return name ? { key, name: native.outText() } : key;
  }

  /** The route key of a route template or scope name (`"GET /users/{id}"`). */
  function routeKey(name) {
    const [len] = native.put(text(name, 'the route name'));
    return native.call('route_key', len);
  }

  /** Explains a transcript or flight recording (tools only). */
  function explainTranscript(transcript) {
    if (native.x.explain_transcript === undefined) {
      throw new TypeError('explainTranscript is in reauth/tools (the module browsers load leaves it out)');
    }
    const json = typeof transcript === 'string' ? transcript : JSON.stringify(transcript);
    const [len] = native.put(text(json, 'the transcript'));
    native.call('explain_transcript', len);
    return native.outText();
  }

  return {
    Coordinator,
    failReasons,
    logoutReasons,
    maxTokenResponseBytes,
    tokenRequest,
    readTokenResponse,
    planRefresh,
    afterRejection,
    keepRotation,
    storedFromLogin,
    storedToCredentials,
    bearerError,
    isCallersAnswer,
    retryAfterMs,
    defaultRoute,
    routeKey,
    explainTranscript,
  };
}

/** A wall clock in ms since the epoch: a finite non-negative number (checked before anything is written). */
function wallClock(value) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`the wall clock must be a non-negative number of milliseconds, not ${describe(value)}`);
  }
  return Math.floor(value);
}

/** `{ replayable, refresh, route }` as numbers. */
export function requestOptions(options) {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`request options are an object, not ${describe(options)}`);
  }
  const route = options.route;
  if (route !== undefined && route !== null) {
    integer(route, 'options.route');
    if (route === 0 || route > 0xffffffff) throw new RangeError(`options.route must be in 1..=4294967295, not ${route}`);
  }
  return [
    boolean(options.replayable, 'options.replayable', true) ? 1 : 0,
    boolean(options.refresh, 'options.refresh', true) ? 1 : 0,
    route ?? 0,
  ];
}

/** An HTTP status: an integer in 0..=65535 (the core refuses what is not 100..=599). */
export function statusCode(status) {
  integer(status, 'status');
  if (status > 65535) throw new RangeError(`status must be an HTTP status, not ${status}`);
  return status;
}

function capacity32(capacity) {
  integer(capacity, 'capacity');
  if (capacity > 0xffffffff) throw new RangeError(`capacity must be at most 4294967295, not ${capacity}`);
  return capacity;
}

function headerValues(values) {
  const list = typeof values === 'string' ? [values] : values;
  if (!Array.isArray(list)) throw new TypeError(`WWW-Authenticate values are a string or an array, not ${describe(values)}`);
  return Array.from(list, (v, i) => text(v, `WWW-Authenticate value ${i}`));
}

/** `{ url, clientId, clientSecret?, auth?: 'body' | 'basic' }`, checked. */
export function tokenEndpoint(endpoint) {
  if (typeof endpoint !== 'object' || endpoint === null) {
    throw new TypeError(`the token endpoint is { url, clientId, clientSecret?, auth? }, not ${describe(endpoint)}`);
  }
  for (const key of Object.keys(endpoint)) {
    if (!['url', 'clientId', 'clientSecret', 'auth'].includes(key)) throw new TypeError(`unknown tokenEndpoint field ${JSON.stringify(key)}`);
  }
  const auth = endpoint.auth ?? 'body';
  if (auth !== 'body' && auth !== 'basic') throw new TypeError(`tokenEndpoint.auth is 'body' or 'basic', not ${JSON.stringify(auth)}`);
  const url = text(endpoint.url instanceof URL ? endpoint.url.href : endpoint.url, 'tokenEndpoint.url');
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError('tokenEndpoint.url is not an absolute URL');
  }
  if ((parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || /[\r\n]/.test(url)) {
    throw new TypeError('tokenEndpoint.url must be an http: or https: URL');
  }
  const clientId = text(endpoint.clientId, 'tokenEndpoint.clientId');
  if (clientId === '') throw new TypeError('tokenEndpoint.clientId must not be empty');
  const clientSecret = optionalText(endpoint.clientSecret, 'tokenEndpoint.clientSecret');
  if (auth === 'basic' && clientSecret === null) throw new TypeError("tokenEndpoint.auth 'basic' needs a clientSecret");
  return { url, clientId, clientSecret, auth };
}

/** A coordinator's state JSON (the core's snake_case) as the API returns it. */
export function stateFrom(json) {
  const s = JSON.parse(json);
  return {
    stats: s.stats,
    now: s.now,
    loggedIn: s.logged_in,
    generation: s.generation,
    refreshing: s.refreshing,
    restoring: s.restoring,
    waiting: s.waiting,
    open: s.open,
    config: s.config,
  };
}
