#!/usr/bin/env node
// Explains a flight recording (or any transcript) as a timeline: each input, each command
// and the contract rule behind it, and why the session ended.
//
//   npx reauth-explain recording.json
//
// Exit status: 0 explained, 1 the recording does not replay, 2 a file that cannot be read
// or is not a transcript.

import { readFileSync } from 'node:fs';
import { explainTranscript } from '../src/tools.js';
import { TranscriptError } from '../src/errors.js';

function main(paths) {
  if (paths.length !== 1 || paths[0] === '-h' || paths[0] === '--help') {
    console.error('usage: reauth-explain RECORDING.json');
    return 2;
  }
  let text;
  try {
    text = readFileSync(paths[0], 'utf8');
  } catch (e) {
    console.error(`${paths[0]}: cannot read: ${e.message}`);
    return 2;
  }
  try {
    process.stdout.write(explainTranscript(text));
    return 0;
  } catch (e) {
    if (e instanceof TranscriptError) {
      console.error(`${paths[0]}: ${e.message}`);
      return e.kind === 'transcript_mismatch' ? 1 : 2;
    }
    if (e instanceof TypeError) {
      console.error(`${paths[0]}: not a valid transcript: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

process.exitCode = main(process.argv.slice(2));
