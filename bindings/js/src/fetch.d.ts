import type { Session } from './index.js';

export interface ReauthRequestInit extends RequestInit {
  reauth?: { refresh?: boolean; replayable?: boolean; route?: number | string };
  duplex?: 'half';
}

/** A fetch that refreshes: `fetch` is the one it calls (default globalThis.fetch). */
export declare function reauthFetch(
  session: Session,
  options?: { fetch?: typeof fetch },
): (input: RequestInfo | URL, init?: ReauthRequestInit) => Promise<Response>;
