// reauth for axios: an interceptor pair. Every request asks the session for its command
// first (a request that must wait for a refresh is parked on a promise), a 401 during a
// refresh joins it, replays go through the same instance, the caller's promise settles
// on the terminal command. The refresh itself is a separate call (the session's fetch),
// never through the intercepted instance.
//
//   import axios from 'axios';
//   import { Session } from 'reauth';
//   import { attach } from 'reauth/axios';
//   const session = new Session({ tokenEndpoint: { url, clientId }, credentials });
//   const api = attach(axios.create({ baseURL: 'https://api.example.com' }), session);
//   const { data } = await api.get('/me');
//
// Per request, `reauth: { refresh: false }` (a public endpoint: its 401 is the caller's,
// rule 19), `reauth: { replayable: false }` (a body that cannot be sent twice; streams
// are detected), `reauth: { route: 'GET /users/{id}' }` (rule 20; default: the method,
// origin and path).

import axios from 'axios';
import { api } from './instance.js';
import { ClosedError, ReauthError, RequestFailedError } from './errors.js';

// The request's state travels in its config (axios copies it into a replay's): its id,
// its token, the adapter it goes out through, whether it ended.
const KEY = '_reauth';
const ABSOLUTE = /^([a-z][a-z\d+\-.]*:)?\/\//i;

/** Installs the interceptors on `instance` and returns it. `eject(instance)` removes them. */
export function attach(instance, session) {
  if (typeof instance?.interceptors?.request?.use !== 'function') {
    throw new TypeError('attach(instance, session) needs an axios instance');
  }
  if (typeof session?.submit !== 'function') throw new TypeError('attach(instance, session) needs a reauth Session');
  const request = instance.interceptors.request.use((config) => onRequest(session, config));
  const response = instance.interceptors.response.use(
    (res) => onResponse(instance, session, res, null),
    (error) => onError(instance, session, error),
  );
  installed.set(instance, [request, response]);
  return instance;
}

const installed = new WeakMap();

/** Removes the interceptors `attach` installed. */
export function eject(instance) {
  const ids = installed.get(instance);
  if (ids === undefined) return;
  instance.interceptors.request.eject(ids[0]);
  instance.interceptors.response.eject(ids[1]);
  installed.delete(instance);
}

/**
 * The request interceptor only wraps the request's adapter: the request is submitted when
 * axios dispatches it, after every request interceptor ran — one that throws later leaves
 * nothing open in the session.
 */
function onRequest(session, config) {
  let state = config[KEY];
  if (state === undefined || state.done) {
    // A new request (or a config sent again after its request ended: a new one too).
    state = { id: null, token: null, done: false, adapter: config.adapter };
    config[KEY] = state;
  }
  config.adapter = (cfg) => send(session, state, cfg);
  return config;
}

/** Submits the request (the first time), waits for its command, sends it. */
async function send(session, state, config) {
  if (state.id === null) {
    const options = config.reauth ?? {};
    const route = typeof options.route === 'string' ? api.routeKey(options.route) : options.route ?? defaultRoute(session, config);
    const { id, next } = session.submit(
      { replayable: options.replayable ?? replayable(config.data), refresh: options.refresh, route },
      config.signal ?? undefined,
    );
    state.id = id;
    const event = next instanceof Promise ? await next : next;
    if (event.kind !== 'send') {
      state.done = true;
      throw terminal(event, undefined);
    }
    state.token = event.token;
  }
  setToken(config, state.token.expose());
  try {
    return await axios.getAdapter(state.adapter, config)(config);
  } catch (e) {
    if (e?.response === undefined || e?.response === null) {
      // No response: a transport error (rule 17) or the caller cancelled.
      state.done = true;
      session.abandon(state.id);
    }
    throw e;
  }
}

function onResponse(instance, session, response, error) {
  const state = response.config?.[KEY];
  if (state === undefined || state.done || state.id === null) {
    if (error !== null) throw error;
    return response;
  }
  let event;
  try {
    event = session.response(state.id, response.status, challenges(response), response.config.signal ?? undefined);
  } catch (e) {
    // Closed while the request was on the wire: its answer is still the caller's.
    if (!(e instanceof ClosedError)) throw e;
    event = { kind: 'complete' };
  }
  if (event instanceof Promise) return event.then((e) => act(instance, state, e, response, error));
  return act(instance, state, event, response, error);
}

function onError(instance, session, error) {
  if (error instanceof ReauthError) throw error; // ours, from the adapter
  const response = error?.response;
  if (response === undefined || response === null) throw error; // abandoned by send()
  return onResponse(instance, session, response, error);
}

function act(instance, state, event, response, error) {
  if (event.kind === 'send') {
    state.token = event.token;
    return instance.request(response.config);
  }
  state.done = true;
  if (event.kind === 'complete' || event.kind === 'callers_answer') {
    if (error !== null) throw error;
    return response;
  }
  throw terminal(event, response);
}

function terminal(event, response) {
  if (event.kind === 'closed') return new ClosedError('reauth is closed: the request was not sent');
  if (event.kind === 'abandoned') return new ReauthError('abandoned', 'the request was abandoned');
  return new RequestFailedError(event.reason, response);
}

function setToken(config, token) {
  const value = `Bearer ${token}`;
  if (typeof config.headers?.set === 'function') config.headers.set('Authorization', value);
  else config.headers = { ...config.headers, Authorization: value };
}

function challenges(response) {
  const h = response.headers;
  const value = typeof h?.get === 'function' ? h.get('www-authenticate') : h?.['www-authenticate'];
  if (value === undefined || value === null || value === false) return undefined;
  return Array.isArray(value) ? value : [String(value)];
}

/** Whether a body can be sent twice: not a stream. */
function replayable(data) {
  if (data === undefined || data === null || typeof data !== 'object') return true;
  if (typeof data.pipe === 'function') return false; // a Node stream
  if (typeof ReadableStream === 'function' && data instanceof ReadableStream) return false;
  return true;
}

// Default routes by the request's method, baseURL and url as written (no URL parsing on a
// hit), per session; cleared when it grows past a bound (urls with ids or queries).
const routes = new WeakMap();
const ROUTES_CACHED = 1024;

function defaultRoute(session, config) {
  let cache = routes.get(session);
  if (cache === undefined) routes.set(session, (cache = new Map()));
  const method = config.method ?? 'get';
  const key = `${method} ${config.baseURL ?? ''} ${config.url ?? ''}`;
  let route = cache.get(key);
  if (route === undefined) {
    route = session.route(method, fullUrl(config));
    if (cache.size >= ROUTES_CACHED) cache.clear();
    cache.set(key, route);
  }
  return route;
}

/** The request's absolute URL, as axios builds it (baseURL + url). */
function fullUrl(config) {
  const url = config.url ?? '';
  let full = url;
  if (config.baseURL && !ABSOLUTE.test(url)) {
    full = url ? `${config.baseURL.replace(/\/?\/$/, '')}/${url.replace(/^\/+/, '')}` : config.baseURL;
  }
  return new URL(full, globalThis.location?.href);
}
