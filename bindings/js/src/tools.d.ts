import type { Config, Coordinator as BaseCoordinator } from './index.js';

/** The core over the tools' build: adds resume from a flight recording's `start`. */
export declare class Coordinator extends BaseCoordinator {
  static resume(config: Config | string, start: string | Record<string, unknown>): Coordinator;
}
/** Explains a transcript or flight recording as a timeline. */
export declare function explainTranscript(transcript: string | Record<string, unknown>): string;
export declare const tools: Record<string, unknown>;
