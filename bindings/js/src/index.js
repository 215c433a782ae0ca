// reauth for JavaScript: the core (Coordinator), the host layer (the token endpoint, the
// store recipe, routes, challenges) and the Session the adapters drive. Adapters:
// `reauth/axios`, `reauth/fetch`; stores: `reauth/stores` (browsers), `reauth/node`.

import { api } from './instance.js';

export { Token } from './token.js';
export { ReauthError, InputError, ConfigError, ClosedError, TranscriptError, RequestFailedError } from './errors.js';
export { Session, Recording, DEFAULT_FLIGHT_RECORDER, nowMs } from './session.js';
export { MemoryStore, WebStorageStore, IndexedDbStore, sharedAcrossTabs } from './stores.js';

export const {
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
} = api;
