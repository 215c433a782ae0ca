// The wasm module (the Rust crate bindings/js/wasm) and its numeric ABI: string
// arguments go into its in buffer as UTF-8, results come back as a number and, when there
// is more, bytes in its out buffer. See bindings/js/wasm/src/lib.rs for each function.

import { ReauthError, fromNative } from './errors.js';
import { Token, describe } from './token.js';

const encoder = new TextEncoder();
// The most string arguments one call writes (the largest are a transcript's JSON and a
// token answer's body, cut at 256 KiB): a bound, so room never wraps around 32 bits.
const MAX_ARGUMENTS = 64 * 1024 * 1024;
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Instantiates the module from its bytes (base64): the same code in browsers and Node. */
export async function load(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const { instance } = await WebAssembly.instantiate(bytes, {});
  return new Native(instance.exports);
}

/** One instance of the module. */
export class Native {
  constructor(exports) {
    this.x = exports;
    this.memory = exports.memory;
    this.bytes = new Uint8Array(this.memory.buffer);
    this.broken = null;
  }

  /** A view of the memory that survives its growth. */
  view() {
    if (this.bytes.buffer !== this.memory.buffer) this.bytes = new Uint8Array(this.memory.buffer);
    return this.bytes;
  }

  /**
   * Writes `parts` (strings, Uint8Arrays, or null for an absent one) into the in buffer;
   * returns their byte lengths (-1 for null).
   */
  put(...parts) {
    let room = 0;
    for (const p of parts) if (p !== null) room += typeof p === 'string' ? p.length * 3 : p.length;
    const lengths = new Array(parts.length);
    if (room === 0) {
      for (let i = 0; i < parts.length; i++) lengths[i] = parts[i] === null ? -1 : 0;
      return lengths;
    }
    let at = this.room(room);
    const view = this.view();
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (p === null) {
        lengths[i] = -1;
      } else if (typeof p === 'string') {
        const { written } = encoder.encodeInto(p, view.subarray(at, at + p.length * 3));
        lengths[i] = written;
        at += written;
      } else {
        view.set(p, at);
        lengths[i] = p.length;
        at += p.length;
      }
    }
    return lengths;
  }

  /** Strings each written with a u32 length in front (WWW-Authenticate values). */
  putPrefixed(values) {
    let room = 0;
    for (const v of values) room += 4 + v.length * 3;
    let at = this.room(room);
    const view = this.view();
    const data = new DataView(view.buffer);
    for (const v of values) {
      const { written } = encoder.encodeInto(v, view.subarray(at + 4, at + 4 + v.length * 3));
      data.setUint32(at, written, true);
      at += 4 + written;
    }
  }

  /** Room for `bytes` of arguments in the in buffer, within the bound. */
  room(bytes) {
    if (bytes > MAX_ARGUMENTS) throw new RangeError(`the arguments of one call are over ${MAX_ARGUMENTS} bytes`);
    // A pointer crosses as an i32: read it unsigned (memory past 2 GiB).
    return this.call('reauth_in', bytes) >>> 0;
  }

  /** Calls an export; a result of -1 is the error the out buffer describes (optional results are -2 for none). */
  call(name, ...args) {
    if (this.broken !== null) throw this.broken;
    let result;
    try {
      result = this.x[name](...args);
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) {
        // A panic traps; the module's state may be half-changed: refuse every later call.
        this.broken = new ReauthError('internal', `reauth's core trapped (${e.message}); the module refuses every later call`, { cause: e });
        throw this.broken;
      }
      throw e;
    }
    if (result === -1) {
      const text = this.outText();
      const newline = text.indexOf('\n');
      throw fromNative(text.slice(0, newline), text.slice(newline + 1));
    }
    return result;
  }

  /** The out buffer's bytes (a view, valid until the next call). */
  out() {
    const ptr = this.x.reauth_out_ptr() >>> 0;
    const len = this.x.reauth_out_len();
    return this.view().subarray(ptr, ptr + len);
  }

  outText() {
    return decoder.decode(this.out());
  }

  reader() {
    const ptr = this.x.reauth_out_ptr() >>> 0;
    const len = this.x.reauth_out_len();
    return new Reader(this.view(), ptr, len);
  }
}

/** Reads the out buffer's encodings (little-endian; numbers as f64; prefixed strings). */
export class Reader {
  constructor(bytes, ptr, len) {
    this.bytes = bytes;
    this.data = new DataView(bytes.buffer, ptr, len);
    this.ptr = ptr;
    this.at = 0;
  }

  u8() {
    return this.data.getUint8(this.at++);
  }

  u16() {
    const v = this.data.getUint16(this.at, true);
    this.at += 2;
    return v;
  }

  u32() {
    const v = this.data.getUint32(this.at, true);
    this.at += 4;
    return v;
  }

  u64() {
    const lo = this.data.getUint32(this.at, true);
    const hi = this.data.getUint32(this.at + 4, true);
    this.at += 8;
    return hi * 4294967296 + lo;
  }

  f64() {
    const v = this.data.getFloat64(this.at, true);
    this.at += 8;
    return v;
  }

  /** An optional number: -1 is none. */
  opt() {
    const v = this.f64();
    return v < 0 ? null : v;
  }

  text(len = this.u32()) {
    const start = this.ptr + this.at;
    this.at += len;
    return decoder.decode(this.bytes.subarray(start, start + len));
  }

  optText() {
    return this.u8() === 0 ? null : this.text();
  }
}

// ----- argument checks: a clear error before anything crosses --------------------------

/** A time, id, generation or attempt: a non-negative integer. */
export function integer(value, what) {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${what} must be an integer, not ${describe(value)}`);
  }
  if (value < 0) throw new RangeError(`${what} must not be negative, not ${value}`);
  return value;
}

/** An optional non-negative integer; -1 for null or undefined. */
export function optionalInteger(value, what) {
  return value === null || value === undefined ? -1 : integer(value, what);
}

/** The text of a string or Token, refused if it cannot cross as UTF-8. */
export function text(value, what) {
  const s = value instanceof Token ? value.expose() : value;
  if (typeof s !== 'string') throw new TypeError(`${what} must be a string or a Token, not ${describe(value)}`);
  if (!s.isWellFormed()) throw new TypeError(`${what} is not valid UTF-16 (it holds a lone surrogate)`);
  return s;
}

/** An optional string or Token; null for null or undefined. */
export function optionalText(value, what) {
  return value === null || value === undefined ? null : text(value, what);
}

export function boolean(value, what, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${what} must be a boolean, not ${describe(value)}`);
  return value;
}
