// A token that never prints: not in String(), JSON, console.log or util.inspect, and not
// as an own property (the text is in a private field, so structuredClone and
// Object.keys see nothing either).

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** A secret: an access or refresh token. `expose()` is the only way to its text. */
export class Token {
  #text;

  constructor(text) {
    if (typeof text !== 'string') {
      throw new TypeError(`a token is a string, not ${describe(text)}`);
    }
    this.#text = text;
  }

  /** The token text: call it only to send the token or to store it. */
  expose() {
    return this.#text;
  }

  /** Its length in UTF-16 code units (safe to log). */
  get length() {
    return this.#text.length;
  }

  /** Whether `other` (a Token or a string) holds the same text. */
  equals(other) {
    return this.#text === (other instanceof Token ? other.expose() : other);
  }

  toString() {
    return 'Token(redacted)';
  }

  toJSON() {
    return '[redacted]';
  }

  [INSPECT]() {
    return 'Token(redacted)';
  }
}

/** A value's type as an error message says it (never its text). */
export function describe(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : `the number ${value}`;
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
