// Errors, as Error subclasses. The messages are the core's (docs/contract.md §8); `kind`
// is the snake_case name the transcripts use (`unknown_request`, …).

/** Every error reauth raises itself. `kind` names it as the transcripts do. */
export class ReauthError extends Error {
  constructor(kind, message, options) {
    super(message, options);
    this.name = 'ReauthError';
    this.kind = kind;
  }
}

/** The host misused an input (contract §8); nothing changed. */
export class InputError extends ReauthError {
  constructor(kind, message) {
    super(kind, message);
    this.name = 'InputError';
  }
}

/** A config out of range. */
export class ConfigError extends ReauthError {
  constructor(message) {
    super('config', message);
    this.name = 'ConfigError';
  }
}

/** The session was closed: the request was not sent, or its wait ended. */
export class ClosedError extends ReauthError {
  constructor(message = 'reauth is closed') {
    super('closed', message);
    this.name = 'ClosedError';
  }
}

/** A file that is not a transcript, or one that does not replay. */
export class TranscriptError extends ReauthError {
  constructor(kind, message) {
    super(kind, message);
    this.name = 'TranscriptError';
  }
}

/**
 * A request reauth failed instead of sending (contract §6, `Fail`): `reason` is one of
 * `not_logged_in`, `logged_out`, `refresh_rejected`, `refresh_unavailable`,
 * `excessive_refresh`, `unauthorized`, `queue_full`, `wait_timeout`, `transport`.
 * `response` is the last response the request got, when it got one.
 */
export class RequestFailedError extends ReauthError {
  constructor(reason, response) {
    super(reason, `request failed: ${reason.replaceAll('_', ' ')}${HINTS[reason] ?? ''}`);
    this.name = 'RequestFailedError';
    this.reason = reason;
    if (response !== undefined) {
      Object.defineProperty(this, 'response', { value: response, enumerable: false });
    }
  }
}

const HINTS = {
  not_logged_in: ' (no session: give the Session credentials, or call session.login() after sign-in)',
  logged_out: ' (the session ended: sign in again)',
  refresh_rejected: ' (the token endpoint refused the refresh token: sign in again)',
};

const INPUT_KINDS = new Set([
  'unknown_request',
  'not_in_flight',
  'unknown_attempt',
  'invalid_credentials',
  'invalid_status',
  'invalid_time',
]);

/** The error the wasm module reported as `kind\nmessage`. */
export function fromNative(kind, message) {
  if (INPUT_KINDS.has(kind)) return new InputError(kind, message);
  if (kind === 'config') return new ConfigError(message);
  if (kind === 'closed') return new ClosedError(message);
  if (kind === 'invalid_transcript' || kind === 'transcript_mismatch') {
    return new TranscriptError(kind, message);
  }
  if (kind === 'invalid_argument') return new TypeError(message);
  return new ReauthError(kind, message);
}
