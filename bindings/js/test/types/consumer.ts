// What an app writes, checked against the package's types (tsc --noEmit --strict).
import axios from 'axios';
import { Session, Coordinator, Token, RequestFailedError, IndexedDbStore, WebStorageStore, sharedAcrossTabs, routeKey, type Command, type LogoutReason, type Recording } from 'reauth';
import { attach } from 'reauth/axios';
import { reauthFetch } from 'reauth/fetch';
import { FileStore } from 'reauth/node';
import { explainTranscript } from 'reauth/tools';

declare const localStorage: Storage;
export const single = new WebStorageStore(localStorage, 'my-app');

const session = new Session({
  tokenEndpoint: { url: 'https://auth.example.com/oauth/token', clientId: 'my-app' },
  credentials: { accessToken: 'at', refreshToken: 'rt', expiresInMs: 3_600_000 },
  store: sharedAcrossTabs(new IndexedDbStore('my-app'), 'my-app'),
  onLogout: (reason: LogoutReason, recording: Recording) => console.log(reason, recording.steps),
  config: { maxRetries: 3, refreshWindow: { maxRefreshes: 5, windowMs: 60_000 } },
});
const api = attach(axios.create({ baseURL: 'https://api.example.com' }), session);
export async function me(): Promise<unknown> {
  try {
    return (await api.get('/me', { reauth: { route: 'GET /me' } })).data;
  } catch (e) {
    if (e instanceof RequestFailedError) console.log(e.reason);
    throw e;
  }
}
const f = reauthFetch(session);
export const res: Promise<Response> = f('https://api.example.com/me', { reauth: { refresh: false } });

const core = new Coordinator({ maxPending: 16 });
core.login(0, { accessToken: new Token('at-1'), refreshToken: 'rt-1' });
const { id, commands } = core.submit(1, { route: routeKey('GET /me') });
for (const c of commands as Command[]) {
  if (c.type === 'send') console.log(c.id === id, c.accessToken.expose().length, c.generation);
}
export const store = new FileStore('/tmp/reauth.json', { lockTtlMs: 60_000 });
export const text: string = explainTranscript({ steps: [] });
