import type { AxiosInstance } from 'axios';
import type { Session } from './index.js';

/** Per request: `reauth: { refresh, replayable, route }`. */
declare module 'axios' {
  interface AxiosRequestConfig {
    reauth?: { refresh?: boolean; replayable?: boolean; route?: number | string };
  }
}

/** Installs reauth's interceptor pair on `instance` and returns it. */
export declare function attach<T extends AxiosInstance>(instance: T, session: Session): T;
/** Removes the interceptors attach() installed. */
export declare function eject(instance: AxiosInstance): void;
