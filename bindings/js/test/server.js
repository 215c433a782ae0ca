// The reference server (tests/server, `reauth-testserver`) for the tests, the load runs
// and the bench: started as a child process on a loopback port, stopped by closing its
// standard input.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const built = fileURLToPath(new URL('../../../target/release/reauth-testserver', import.meta.url));

/** The server binary: REAUTH_TESTSERVER, or the workspace's release build. */
export function serverBinary() {
  const bin = process.env.REAUTH_TESTSERVER ?? built;
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: cargo build --release -p reauth-testserver (or set REAUTH_TESTSERVER)`);
  }
  return bin;
}

/** The demo's fault mix (demo/src/run.rs), as flags. */
export const CHAOS = [
  '--refresh-latency-ms', '30',
  '--token-5xx-rate', '0.15',
  '--token-429-rate', '0.10',
  '--dropped-connection-rate', '0.10',
  '--lost-response-rate', '0.10',
  '--grace-ms', '10000',
];

/** Starts a server with `flags`; resolves to { url, stats(), revokeAccess(), login(), stop() }. */
export async function startServer(flags = []) {
  const child = spawn(serverBinary(), flags, { stdio: ['pipe', 'pipe', 'ignore'] });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`reauth-testserver exited (${code})`)));
    lines.once('line', (line) => resolve(line.replace(/^listening on /, '').trim()));
  });
  const post = (path, body) =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  return {
    url,
    tokenUrl: `${url}/oauth/token`,
    async stats() {
      return (await fetch(`${url}/admin/stats`)).json();
    },
    async revokeAccess() {
      await post('/admin/revoke-access', '');
    },
    async configure(config) {
      const r = await fetch(`${url}/admin/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(config) });
      if (!r.ok) throw new Error(`admin/config: ${r.status} ${await r.text()}`);
    },
    /** A password login: credentials for a new token family. */
    async login() {
      const answer = await (await post('/oauth/token', 'grant_type=password&username=demo&password=demo')).json();
      return { accessToken: answer.access_token, refreshToken: answer.refresh_token, expiresInMs: answer.expires_in * 1000 };
    },
    stop() {
      return new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin.end();
      });
    },
  };
}
