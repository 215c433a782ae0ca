// reauth for fetch: a fetch-compatible function. Each call asks the session for its
// command first, sends with the token it gets, reports the response, and replays after a
// refresh (the 401's body is discarded first). A request whose body is a stream is not
// replayable: its caller gets the 401 (rule 14).
//
//   import { Session } from 'reauth';
//   import { reauthFetch } from 'reauth/fetch';
//   const session = new Session({ tokenEndpoint: { url, clientId }, credentials });
//   const fetch = reauthFetch(session);
//   const me = await (await fetch('https://api.example.com/me')).json();
//
// Per call, `init.reauth`: `{ refresh: false }`, `{ replayable: false }`,
// `{ route: 'GET /users/{id}' }` as for axios. A request reauth fails rejects with
// RequestFailedError (`reason`; `response` is the last response, its body unread).

import { api } from './instance.js';
import { ClosedError, ReauthError, RequestFailedError } from './errors.js';

/** A fetch that refreshes: `inner` is the fetch it calls (default: globalThis.fetch). */
export function reauthFetch(session, { fetch: inner = globalThis.fetch } = {}) {
  if (typeof session?.submit !== 'function') throw new TypeError('reauthFetch(session) needs a reauth Session');
  if (typeof inner !== 'function') throw new TypeError('reauthFetch needs a fetch to call');
  return async function fetch(input, init = undefined) {
    const options = init?.reauth ?? {};
    let requestInit = init;
    if (init?.reauth !== undefined) {
      requestInit = { ...init };
      delete requestInit.reauth;
    }
    const request = new Request(input, requestInit);
    const streamed = typeof ReadableStream === 'function' && requestInit?.body instanceof ReadableStream;
    const replay = options.replayable ?? !streamed;
    const route = typeof options.route === 'string' ? api.routeKey(options.route) : options.route ?? session.route(request.method, request.url);
    const signal = request.signal;
    const { id, next } = session.submit({ replayable: replay, refresh: options.refresh, route }, signal);
    let event = await next;
    let response;
    for (;;) {
      if (event.kind !== 'send') break;
      const attempt = replay ? request.clone() : request;
      attempt.headers.set('Authorization', `Bearer ${event.token.expose()}`);
      try {
        response = await inner(attempt);
        if (typeof response?.status !== 'number' || typeof response.headers?.get !== 'function') {
          throw new TypeError('the fetch reauthFetch calls did not return a Response');
        }
      } catch (e) {
        session.abandon(id); // rule 17: a transport error, never retried by reauth
        throw e;
      }
      const values = response.headers.get('www-authenticate');
      try {
        event = await session.response(id, response.status, values === null ? undefined : [values], signal);
      } catch (e) {
        // Closed while the request was on the wire: its answer is still the caller's.
        if (e instanceof ClosedError) return response;
        session.abandon(id); // a status the core refuses: the request ends here
        throw e;
      }
      if (event.kind === 'send') await response.body?.cancel().catch(() => {});
    }
    if (event.kind === 'complete' || event.kind === 'callers_answer') return response;
    if (event.kind === 'closed') throw new ClosedError('reauth is closed: the request was not sent');
    if (event.kind === 'abandoned') throw new ReauthError('abandoned', 'the request was abandoned');
    throw new RequestFailedError(event.reason, response);
  };
}
