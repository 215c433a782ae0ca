// The module's one instance for the adapters (loaded once, with top-level await: the same
// code in browsers and Node).

import wasm from '../dist/reauth-wasm.js';
import { load } from './native.js';
import { bind } from './api.js';

export const native = await load(wasm);
export const api = bind(native);
