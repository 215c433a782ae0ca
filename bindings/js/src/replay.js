// Replays conformance transcripts (tests/vectors/*.json, flight recordings) through the
// JavaScript API: every input through Coordinator, every batch decoded to plain objects
// and compared with the transcript's, field by field. The format is described in
// tests/vectors/README.md. Transcripts are the one place where commands are written with
// their token text: they hold test data only.

import { Coordinator } from './tools.js';
import { ReauthError, TranscriptError } from './errors.js';

const CAUSE = /^(7\.([1-9]|1[0-9]|20)|answered|logged_in)$/;
const CONFIG_FIELDS = new Set([
  'refresh_statuses',
  'expiry_skew_ms',
  'min_token_age_ms',
  'max_replays_per_request',
  'refresh_window',
  'initial_backoff_ms',
  'max_backoff_ms',
  'max_retries',
  'refresh_timeout_ms',
  'max_pending',
  'max_wait_ms',
]);
// The recorder's capacity while a replay reads causes (only the last input's are read).
const RECORDED_WHILE_REPLAYING = 1024;
// The core's clock ends at 2^53 - 1 (MAX_TIMESTAMP): a transcript's `at` or lifetime
// beyond it (u64::MAX, say) is past the end either way, and crosses saturated, so
// JSON.parse's rounding of such numbers changes nothing.

function credentials(raw) {
  if (typeof raw !== 'object' || raw === null) throw new TranscriptError('invalid_transcript', 'credentials must be an object');
  return {
    accessToken: raw.access_token,
    refreshToken: raw.refresh_token ?? null,
    expiresInMs: raw.expires_in_ms ?? null,
  };
}

function failure(raw) {
  if (raw === 'rejected') return { type: 'rejected' };
  if (typeof raw === 'object' && raw !== null && Object.keys(raw).length === 1 && 'transient' in raw) {
    return { type: 'transient', retryAfterMs: raw.transient?.retry_after_ms ?? null };
  }
  throw new TranscriptError('invalid_transcript', `unknown refresh failure ${JSON.stringify(raw)}`);
}

/** A command as a transcript writes it — with its token text (test data only). */
export function commandRecord(c) {
  switch (c.type) {
    case 'send':
    case 'replay':
      return { type: c.type, id: c.id, access_token: c.accessToken.expose(), generation: c.generation };
    case 'refresh':
      return { type: 'refresh', attempt: c.attempt, refresh_token: c.refreshToken.expose() };
    case 'store_credentials':
      return {
        type: 'store_credentials',
        generation: c.generation,
        access_token: c.credentials.accessToken.expose(),
        refresh_token: c.credentials.refreshToken === null ? null : c.credentials.refreshToken.expose(),
        expires_in_ms: c.credentials.expiresInMs,
        expires_at: c.expiresAt,
      };
    case 'complete':
      return { type: 'complete', id: c.id };
    case 'fail':
      return { type: 'fail', id: c.id, reason: c.reason };
    default:
      return { type: 'logout', reason: c.reason };
  }
}

function apply(core, now, raw) {
  if (typeof raw !== 'object' || raw === null) throw new TranscriptError('invalid_transcript', 'an input must be an object');
  switch (raw.type) {
    case 'login':
      return [null, core.login(now, credentials(raw.credentials))];
    case 'submit': {
      const o = raw.options ?? {};
      const { id, commands } = core.submit(now, { replayable: o.replayable ?? true, refresh: o.refresh ?? true, route: o.route ?? undefined });
      return [id, commands];
    }
    case 'response':
      return [null, core.handleResponse(now, raw.id, raw.status)];
    case 'transport_error':
      return [null, core.handleTransportError(now, raw.id)];
    case 'refresh_succeeded':
      return [null, core.handleRefreshSucceeded(now, raw.attempt, credentials(raw.credentials))];
    case 'refresh_failed':
      return [null, core.handleRefreshFailed(now, raw.attempt, failure(raw.failure))];
    case 'timeout':
      return [null, core.handleTimeout(now)];
    case 'cancel':
      return [null, core.cancel(now, raw.id)];
    case 'force_refresh':
      return [null, core.forceRefresh(now)];
    case 'logout':
      return [null, core.logout(now)];
    case 'begin_restore':
      return [null, core.beginRestore(now)];
    case 'restore_failed':
      return [null, core.restoreFailed(now)];
    default:
      throw new TranscriptError('invalid_transcript', `unknown input type ${JSON.stringify(raw.type)}`);
  }
}

function withDefaults(record) {
  if (record?.type === 'store_credentials') return { expires_in_ms: null, expires_at: null, ...record };
  return record;
}

/** Key order does not matter; everything else does. */
function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]));
  }
  return value;
}

function same(a, b) {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/**
 * Replays one parsed transcript from a new coordinator (or a recording's `start`) and
 * returns its mismatches: `{ step, at, input, expected, actual }`. Throws
 * TranscriptError for a file that is not a transcript.
 */
export function replay(transcript) {
  if (typeof transcript !== 'object' || transcript === null || Array.isArray(transcript)) {
    throw new TranscriptError('invalid_transcript', 'a transcript is a JSON object');
  }
  const config = transcript.config ?? {};
  if (typeof config !== 'object' || config === null) throw new TranscriptError('invalid_transcript', 'config must be an object');
  for (const key of Object.keys(config)) {
    if (!CONFIG_FIELDS.has(key)) throw new TranscriptError('invalid_transcript', `unknown config field ${key}`);
  }
  let core;
  try {
    core = transcript.start === undefined || transcript.start === null
      ? new Coordinator(JSON.stringify(config))
      : Coordinator.resume(JSON.stringify(config), transcript.start);
  } catch (e) {
    if (e instanceof ReauthError) throw new TranscriptError('invalid_transcript', e.message);
    throw e;
  }
  const steps = transcript.steps;
  if (!Array.isArray(steps) || !steps.every((s) => typeof s === 'object' && s !== null && !Array.isArray(s))) {
    throw new TranscriptError('invalid_transcript', 'steps must be a list of objects');
  }
  for (const step of steps) {
    const causes = step.causes ?? [];
    if (!Array.isArray(causes) || !causes.every((c) => typeof c === 'string' && CAUSE.test(c))) {
      throw new TranscriptError('invalid_transcript', `unknown cause in ${JSON.stringify(causes)} ("7.1" to "7.20", "answered", "logged_in")`);
    }
  }
  if (steps.some((s) => (s.causes ?? []).length > 0)) core.record(RECORDED_WHILE_REPLAYING);
  const mismatches = [];
  steps.forEach((step, index) => {
    if (typeof step.at !== 'number') throw new TranscriptError('invalid_transcript', `step ${index + 1} has no "at"`);
    const raw = step.input;
    let id = null;
    let commands = [];
    let error = null;
    try {
      [id, commands] = apply(core, step.at, raw);
    } catch (e) {
      if (e instanceof TranscriptError) throw e;
      if (!(e instanceof ReauthError)) throw new TranscriptError('invalid_transcript', `step ${index + 1}: ${e.message}`);
      error = e.kind;
    }
    const actual = { commands: commands.map(commandRecord), error };
    const expected = { commands: (step.expect ?? []).map(withDefaults), error: step.error ?? null };
    if ('id' in step) {
      expected.id = step.id;
      actual.id = id;
    }
    if ('timeout' in step) {
      expected.timeout = step.timeout;
      actual.timeout = core.pollTimeout();
    }
    if ((step.causes ?? []).length > 0) {
      expected.causes = step.causes;
      actual.causes = core.lastCauses();
    }
    if (!same(actual, expected)) mismatches.push({ step: index + 1, at: step.at, input: raw?.type ?? '?', expected, actual });
  });
  core.free();
  return mismatches;
}

/** A mismatch as the other replayers print it. */
export function formatMismatch(m) {
  const lines = [`  step ${m.step} (at ${m.at}, ${m.input}):`];
  for (const key of ['commands', 'error', 'id', 'timeout', 'causes']) {
    if (!same(m.expected[key], m.actual[key])) {
      lines.push(`    ${key}: expected ${JSON.stringify(m.expected[key])}`);
      lines.push(`    ${' '.repeat(key.length)}  actual   ${JSON.stringify(m.actual[key])}`);
    }
  }
  return lines.join('\n');
}
