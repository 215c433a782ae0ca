// The tools (Node): the same API over the tools' build of the module, which adds
// Coordinator.resume (a flight recording's start) and explainTranscript. The replayer
// (`npx reauth-replay`) and `npx reauth-explain` use it; adapters never load it.

import wasm from '../dist/reauth-tools-wasm.js';
import { load } from './native.js';
import { bind } from './api.js';

export const tools = bind(await load(wasm));
export const { Coordinator, explainTranscript } = tools;
