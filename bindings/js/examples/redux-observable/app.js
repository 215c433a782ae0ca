// A redux store with the classic redux-observable API flow, on top of reauth: one reauth
// Session for the signed-in user, its fetch handed to the epics as a dependency, its
// logouts turned into actions. In an app the imports are `reauth` and `reauth/fetch`.
//
//   const app = createApp({ baseUrl, tokenUrl, credentials });
//   app.store.dispatch({ type: 'api/request', id: 1, path: '/api/me' });
//   const outcome = await app.request('/api/me'); // the api/succeeded or api/failed action

import { createStore, applyMiddleware } from 'redux';
import { createEpicMiddleware, combineEpics } from 'redux-observable';
import { Subject } from 'rxjs';
import { Session } from '../../src/index.js';
import { reauthFetch } from '../../src/fetch.js';
import {
  apiEpic,
  sessionEpic,
  HttpError,
  API_REQUEST,
  API_SUCCEEDED,
  API_FAILED,
  LOGGED_IN,
  LOGGED_OUT,
  LOGIN_FAILED,
} from './epics.js';

export * from './epics.js';

/**
 * @typedef {{
 *   session: 'active' | 'logged_out',
 *   logoutReason: string | null,
 *   requests: { pending: number, ok: number, failed: number },
 *   lastError: { id: string | number | null, path: string | null, reason: string, status?: number, message: string } | null,
 * }} AppState
 */

/** @returns {AppState} */
export function initialState(loggedIn = true) {
  return {
    session: loggedIn ? 'active' : 'logged_out',
    logoutReason: null,
    requests: { pending: 0, ok: 0, failed: 0 },
    lastError: null,
  };
}

/**
 * @param {AppState} state
 * @param {{ type: string, [key: string]: any }} action
 * @returns {AppState}
 */
export function reducer(state = initialState(), action) {
  const { requests } = state;
  switch (action.type) {
    case API_REQUEST:
      return { ...state, requests: { ...requests, pending: requests.pending + 1 } };
    case API_SUCCEEDED:
      return { ...state, requests: { ...requests, pending: requests.pending - 1, ok: requests.ok + 1 } };
    case API_FAILED: {
      const { type, ...error } = action;
      return { ...state, requests: { ...requests, pending: requests.pending - 1, failed: requests.failed + 1 }, lastError: /** @type {AppState['lastError']} */ (error) };
    }
    case LOGGED_IN:
      return { ...state, session: 'active', logoutReason: null };
    case LOGGED_OUT:
      return { ...state, session: 'logged_out', logoutReason: action.reason };
    case LOGIN_FAILED:
      return { ...state, lastError: { id: null, path: null, reason: 'login_failed', message: action.message } };
    default:
      return state;
  }
}

/**
 * Builds the store, the session and the epics.
 *
 * @param {{
 *   baseUrl: string,                 // the API's origin (and path prefix), no trailing slash
 *   tokenUrl: string,                // the OAuth token endpoint
 *   clientId?: string,
 *   credentials?: { accessToken: string, refreshToken?: string, expiresInMs?: number },
 *   fetch?: typeof globalThis.fetch, // for the API and the token endpoint (default: globalThis.fetch)
 *   config?: object,                 // reauth's config (Session option `config`)
 *   store?: any,                     // reauth's credential store (reauth/stores; default: in memory)
 * }} options
 */
export function createApp({ baseUrl, tokenUrl, clientId = 'demo', credentials, fetch = globalThis.fetch, config, store: credentialStore }) {
  /** @type {Subject<string>} */
  const logouts$ = new Subject();
  const session = new Session({
    tokenEndpoint: { url: tokenUrl, clientId },
    credentials,
    config,
    store: credentialStore,
    fetch,
    logger: {},
    onLogout: (reason) => logouts$.next(reason),
  });
  const authed = reauthFetch(session, { fetch });

  /** @type {import('./epics.js').Api} */
  const api = async (path, init) => {
    const response = await authed(`${baseUrl}${path}`, init);
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      throw new HttpError(response.status);
    }
    return response.status === 204 ? null : response.json();
  };

  // Settles app.request()'s promises: each outcome action, by id, after the reducer ran.
  const waiting = new Map();
  /** @type {import('redux').Middleware} */
  const outcomes = () => (next) => (action) => {
    const result = next(action);
    if (action.type === API_SUCCEEDED || action.type === API_FAILED) {
      const resolve = waiting.get(action.id);
      if (resolve !== undefined) {
        waiting.delete(action.id);
        resolve(action);
      }
    }
    return result;
  };

  const epicMiddleware = createEpicMiddleware({ dependencies: { api, session, logouts$ } });
  const store = createStore(reducer, initialState(credentials != null), applyMiddleware(outcomes, epicMiddleware));
  epicMiddleware.run(combineEpics(apiEpic, sessionEpic));

  let ids = 0;
  return {
    store,
    session,
    /**
     * Dispatches `api/request` for `path` and resolves to its outcome action
     * (`api/succeeded` or `api/failed`).
     * @param {string} path
     * @param {RequestInit} [init]
     * @returns {Promise<import('./epics.js').ApiSucceeded | import('./epics.js').ApiFailed>}
     */
    request(path, init = undefined) {
      const id = `r${++ids}`;
      const outcome = new Promise((resolve) => waiting.set(id, resolve));
      store.dispatch({ type: API_REQUEST, id, path, ...(init === undefined ? {} : { init }) });
      return outcome;
    },
    /** Ends the session's service (waiting requests end `api/failed`, reason `closed`). */
    close() {
      session.close();
      logouts$.complete();
    },
  };
}
