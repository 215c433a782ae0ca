// Every conformance transcript and flight recording replayed through the JavaScript API
// (each input through Coordinator, each batch decoded to plain objects) with identical
// batches; the replayer's exit codes as the other replayers document them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replay } from '../src/replay.js';
import { jsonFiles, PACKAGE, ROOT } from './paths.js';

const vectors = jsonFiles('tests/vectors');
const recordings = jsonFiles('tests/recordings');

test('the project has its transcripts', () => {
  assert.ok(vectors.length >= 34, `${vectors.length} transcripts`);
  assert.ok(recordings.length >= 1);
});

for (const [path, transcript] of [...vectors, ...recordings]) {
  test(`replays ${path.slice(ROOT.length)}`, () => {
    assert.deepEqual(replay(transcript), []);
  });
}

test('a changed token, id, error or cause is a mismatch', () => {
  const [, cancel] = vectors.find(([p]) => p.endsWith('cancel.json'));
  const stepWith = (t, pred) => t.steps.findIndex(pred);
  const edits = [
    (t) => { const i = stepWith(t, (s) => s.expect?.[0]?.access_token); t.steps[i].expect[0].access_token += 'x'; },
    (t) => { const i = stepWith(t, (s) => 'id' in s); t.steps[i].id += 1; },
    (t) => { const i = stepWith(t, (s) => s.expect?.length > 0); t.steps[i].expect.pop(); },
    (t) => { const i = stepWith(t, () => true); t.steps[i].error = 'unknown_request'; },
  ];
  for (const edit of edits) {
    const t = structuredClone(cancel);
    edit(t);
    assert.equal(replay(t).length, 1);
  }
  const [, recording] = recordings[0];
  const t = structuredClone(recording);
  const i = t.steps.findIndex((s) => s.causes?.length > 0);
  t.steps[i].causes[0] = t.steps[i].causes[0] === '7.1' ? '7.2' : '7.1';
  assert.equal(replay(t).length, 1, 'a recorded cause is checked');
});

function cli(...args) {
  return spawnSync(process.execPath, [join(PACKAGE, 'bin/reauth-replay.js'), ...args], { encoding: 'utf8' });
}

test('npx reauth-replay: 0 all match, 1 a mismatch, 2 not a transcript or no file', () => {
  const ok = cli(...vectors.map(([p]) => p));
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /transcript\(s\): all match/);
  const dir = mkdtempSync(join(tmpdir(), 'reauth-replay-'));
  const cancel = readFileSync(join(ROOT, 'tests/vectors/cancel.json'), 'utf8');
  const changed = cancel.replace('"generation": 1}]', '"generation": 7}]');
  assert.notEqual(changed, cancel);
  writeFileSync(join(dir, 'mismatch.json'), changed);
  writeFileSync(join(dir, 'garbage.json'), 'not a transcript');
  writeFileSync(join(dir, 'shape.json'), '{"steps": 3}');
  const mismatch = cli(join(dir, 'mismatch.json'));
  assert.equal(mismatch.status, 1);
  assert.match(mismatch.stdout, /MISMATCH .*mismatch\.json: 1 of \d+ steps differ/);
  assert.equal(cli(join(dir, 'garbage.json')).status, 2);
  assert.equal(cli(join(dir, 'shape.json')).status, 2);
  assert.equal(cli(join(dir, 'missing.json')).status, 2);
  assert.equal(cli().status, 2);
});

test('npx reauth-explain: the recording explained, 1 when it does not replay, 2 for garbage', () => {
  const explain = (file) => spawnSync(process.execPath, [join(PACKAGE, 'bin/reauth-explain.js'), file], { encoding: 'utf8' });
  const [path, recording] = recordings[0];
  const ok = explain(path);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /Why the session ended/);
  const dir = mkdtempSync(join(tmpdir(), 'reauth-explain-'));
  const t = structuredClone(recording);
  const i = t.steps.findIndex((s) => s.expect?.length > 0);
  t.steps[i].expect = [];
  writeFileSync(join(dir, 'tampered.json'), JSON.stringify(t));
  writeFileSync(join(dir, 'garbage.json'), '[1, 2');
  assert.equal(explain(join(dir, 'tampered.json')).status, 1);
  assert.equal(explain(join(dir, 'garbage.json')).status, 2);
});
