// The epics of the classic redux-observable "call the API, refresh on 401" flow, written on
// top of reauth. The shape stays the familiar one — an action in, a request, an action
// out — but the request goes through reauth's fetch, so the 401, the refresh, the queue
// of requests that wait for it, the replay, the loop counter and the logout on a refused
// refresh are reauth's decisions (docs/contract.md §7), not the epic's.

import { merge, from, of, map, mergeMap, exhaustMap, catchError, tap, ignoreElements } from 'rxjs';
import { ofType } from 'redux-observable';
import { ClosedError, RequestFailedError } from '../../src/index.js';

/** Action types. */
export const API_REQUEST = 'api/request';
export const API_SUCCEEDED = 'api/succeeded';
export const API_FAILED = 'api/failed';
export const LOGIN = 'session/login';
export const LOGGED_IN = 'session/loggedIn';
export const LOGIN_FAILED = 'session/loginFailed';
export const LOGOUT = 'session/logout';
export const LOGGED_OUT = 'session/loggedOut';

/**
 * @typedef {{ type: 'api/request', id: string | number, path: string, init?: RequestInit }} ApiRequest
 * @typedef {{ type: 'api/succeeded', id: string | number, path: string, data: unknown }} ApiSucceeded
 * @typedef {{ type: 'api/failed', id: string | number, path: string, reason: string, status?: number, message: string }} ApiFailed
 * @typedef {(path: string, init?: RequestInit) => Promise<unknown>} Api
 *   The app's API call: resolves to the JSON body of a 2xx answer, rejects otherwise.
 * @typedef {{ api: Api, session: import('../../src/index.js').Session, logouts$: import('rxjs').Observable<string> }} Dependencies
 * @typedef {import('redux-observable').Epic<any, any, any, Dependencies>} AppEpic
 */

/** A 2xx was expected; reauth handed the caller this status (its answer, not a 401 it could cure). */
export class HttpError extends Error {
  /** @param {number} status */
  constructor(status) {
    super(`HTTP ${status}`);
    this.name = 'HttpError';
    this.status = status;
  }
}

/**
 * `api/request` → the call, through reauth → `api/succeeded` or `api/failed`. No 401
 * branch, no refresh action, no `retryWhen`: a request that meets a 401 waits for the
 * one refresh, is replayed with the new token, and only then settles the promise.
 * @type {AppEpic}
 */
export const apiEpic = (action$, _state$, { api }) =>
  action$.pipe(
    ofType(API_REQUEST),
    mergeMap(({ id, path, init }) =>
      from(api(path, init)).pipe(
        map((data) => ({ type: API_SUCCEEDED, id, path, data })),
        catchError((error) => of(apiFailed(id, path, error))),
      ),
    ),
  );

/**
 * The session's side: reauth's logout (a refused refresh, a refresh loop, the user's
 * logout) becomes `session/loggedOut`; `session/login` signs in with new credentials;
 * `session/logout` ends the session (waiting requests fail `logged_out`).
 * @type {AppEpic}
 */
export const sessionEpic = (action$, _state$, { session, logouts$ }) =>
  merge(
    logouts$.pipe(map((reason) => ({ type: LOGGED_OUT, reason }))),
    action$.pipe(
      ofType(LOGIN),
      exhaustMap(({ credentials }) =>
        from(session.login(credentials)).pipe(
          map(() => ({ type: LOGGED_IN })),
          catchError((error) => of({ type: LOGIN_FAILED, message: String(error?.message ?? error) })),
        ),
      ),
    ),
    action$.pipe(
      ofType(LOGOUT),
      tap(() => session.logout()),
      ignoreElements(),
    ),
  );

/**
 * The `api/failed` action for `error`. `reason` is reauth's fail reason when reauth failed
 * the request (`refresh_rejected`, `logged_out`, `not_logged_in`, `refresh_unavailable`,
 * `excessive_refresh`, `unauthorized`, …), else `http_error` (a non-2xx answer, `status`
 * set), `closed` (the session was closed) or `transport` (the network failed; reauth
 * never retries that).
 * @param {string | number} id
 * @param {string} path
 * @param {any} error
 * @returns {ApiFailed}
 */
export function apiFailed(id, path, error) {
  const message = String(error?.message ?? error);
  if (error instanceof RequestFailedError) {
    // `response`: the last response the request got, if it got one (its body unread).
    const status = /** @type {Response | undefined} */ (error.response)?.status;
    return { type: API_FAILED, id, path, reason: error.reason, ...(status === undefined ? {} : { status }), message };
  }
  if (error instanceof HttpError) return { type: API_FAILED, id, path, reason: 'http_error', status: error.status, message };
  if (error instanceof ClosedError) return { type: API_FAILED, id, path, reason: 'closed', message };
  return { type: API_FAILED, id, path, reason: 'transport', message };
}
