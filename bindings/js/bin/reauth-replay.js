#!/usr/bin/env node
// Replays conformance transcripts (tests/vectors/*.json) and flight recordings through
// the JavaScript package:
//
//   npx reauth-replay tests/vectors/*.json
//
// Exit status, as the Rust, Python and Kotlin replayers: 0 every step matches, 1 a
// mismatch (each printed as expected versus actual), 2 a file that cannot be read or is
// not a transcript.

import { readFileSync } from 'node:fs';
import { replay, formatMismatch } from '../src/replay.js';
import { TranscriptError } from '../src/errors.js';

function main(paths) {
  if (paths.length === 0 || paths.some((p) => p === '-h' || p === '--help')) {
    console.error('usage: reauth-replay TRANSCRIPT.json [TRANSCRIPT.json ...]');
    return 2;
  }
  let mismatched = false;
  for (const path of paths) {
    let transcript;
    try {
      transcript = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      console.error(`${path}: ${e.code === undefined ? 'not a valid transcript' : 'cannot read'}: ${e.message}`);
      return 2;
    }
    let mismatches;
    try {
      mismatches = replay(transcript);
    } catch (e) {
      if (!(e instanceof TranscriptError || e instanceof TypeError || e instanceof RangeError)) throw e;
      console.error(`${path}: not a valid transcript: ${e.message}`);
      return 2;
    }
    const steps = transcript.steps.length;
    if (mismatches.length > 0) {
      mismatched = true;
      console.log(`MISMATCH ${path}: ${mismatches.length} of ${steps} steps differ`);
      for (const m of mismatches) console.log(formatMismatch(m));
    } else {
      console.log(`ok       ${path} (${steps} steps)`);
    }
  }
  console.log(`${paths.length} transcript(s): ${mismatched ? 'some differ' : 'all match'}`);
  return mismatched ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
