// The package as its users get it: `npm pack`, installed into a fresh folder, imported
// from there (core, adapters' modules, tools) and its bins run; the types check; the
// .wasm within its size budget.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE, ROOT } from './paths.js';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

test('npm pack, npm install in a fresh folder, import and run the bins', () => {
  const dir = mkdtempSync(join(tmpdir(), 'reauth-install-'));
  const packed = JSON.parse(execFileSync(npm, ['pack', '--json', '--pack-destination', dir], { cwd: PACKAGE, encoding: 'utf8' }));
  const files = packed[0].files.map((f) => f.path);
  for (const f of ['dist/reauth.wasm', 'dist/reauth-wasm.js', 'dist/reauth-tools-wasm.js', 'src/index.js', 'src/index.d.ts', 'bin/reauth-replay.js']) {
    assert.ok(files.includes(f), `the package carries ${f}`);
  }
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/')), 'no tests or dependencies in the package');
  writeFileSync(join(dir, 'package.json'), '{"name": "app", "private": true, "type": "module"}');
  execFileSync(npm, ['install', '--no-audit', '--no-fund', '--offline', join(dir, packed[0].filename)], { cwd: dir, stdio: 'pipe' });
  writeFileSync(
    join(dir, 'app.js'),
    `import { Coordinator, Session, Token } from 'reauth';
     import { reauthFetch } from 'reauth/fetch';
     import { MemoryStore } from 'reauth/stores';
     import { FileStore } from 'reauth/node';
     import { explainTranscript } from 'reauth/tools';
     const core = new Coordinator();
     core.login(0, { accessToken: 'at', refreshToken: 'rt' });
     console.log(core.submit(1).commands[0].type, typeof reauthFetch, typeof MemoryStore, typeof FileStore, typeof explainTranscript, String(new Token('x')));`,
  );
  const out = execFileSync(process.execPath, ['app.js'], { cwd: dir, encoding: 'utf8' });
  assert.equal(out.trim(), 'send function function function function Token(redacted)');
  const replay = spawnSync(join(dir, 'node_modules/.bin/reauth-replay'), [join(ROOT, 'tests/vectors/cancel.json')], { encoding: 'utf8' });
  assert.equal(replay.status, 0, replay.stderr);
});

test('the types describe the API an app uses (tsc --strict)', () => {
  const r = spawnSync(join(PACKAGE, 'node_modules/.bin/tsc'), ['-p', join(PACKAGE, 'test/types')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('the .wasm stays under 150 KB gzipped and imports nothing', async () => {
  const wasm = readFileSync(join(PACKAGE, 'dist/reauth.wasm'));
  const gz = gzipSync(wasm, { level: 9 }).length;
  console.log(`dist/reauth.wasm: ${statSync(join(PACKAGE, 'dist/reauth.wasm')).size} bytes, ${gz} gzipped`);
  assert.ok(gz < 150 * 1024, `${gz} bytes gzipped`);
  const module = await WebAssembly.compile(wasm);
  assert.deepEqual(WebAssembly.Module.imports(module), []);
});
