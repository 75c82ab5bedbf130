import { randomUUID } from 'node:crypto';

/** Injected time, so tests can pin it. Milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests can move by hand. */
export class ManualClock implements Clock {
  constructor(private t: number = Date.UTC(2026, 10, 25, 12, 0, 0)) {}
  now(): number {
    return this.t;
  }
  /** Move forward by `ms`. */
  advance(ms: number): void {
    this.t += ms;
  }
  set(t: number): void {
    this.t = t;
  }
}

/** Injected id generation. */
export type IdGenerator = (prefix?: string) => string;

/** Random ids: `prefix_` + a UUIDv4 without dashes. */
export const randomId: IdGenerator = (prefix?: string) => {
  const id = randomUUID().replaceAll('-', '');
  return prefix ? `${prefix}_${id}` : id;
};
