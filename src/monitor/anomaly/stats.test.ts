import { describe, expect, it } from 'vitest';
import { emptyHour, HOUR_MS, type HourStats, hasCallEvidence, perWindow, rangeStats } from './stats.js';

const h = (over: Partial<HourStats>): HourStats => ({ ...emptyHour(), ...over });
const evidence = { minBaselineCalls: 20, minBaselineWindows: 3 };

describe('baseline arithmetic', () => {
  it('averages over active windows only, the range end excluded', () => {
    const hours: Array<[number, HourStats]> = [
      [0, h({ calls: 10, resultBytes: 100, tokens: 50, tokenCalls: 5 })],
      [HOUR_MS, h({ calls: 10, resultBytes: 100 })],
      [5 * HOUR_MS, h({ calls: 10, resultBytes: 100, tokens: 50, tokenCalls: 5 })],
      [6 * HOUR_MS, h({ denials: 4 })], // no calls: not an active window
      [7 * HOUR_MS, h({ calls: 99 })], // the current window: outside [0, 7h)
    ];
    const s = rangeStats(hours, 0, 7 * HOUR_MS, HOUR_MS);
    expect(s).toEqual({
      calls: 30,
      resultBytes: 300,
      tokens: 100,
      tokenCalls: 10,
      denials: 4,
      windows: 3,
      tokenWindows: 2,
    });
    expect(perWindow(s, evidence)).toEqual({ calls: 10, resultBytes: 100, modelTokens: null });
    expect(perWindow(s, { minBaselineCalls: 10, minBaselineWindows: 2 })).toEqual({
      calls: 10,
      resultBytes: 100,
      modelTokens: 50,
    });
    // Two-hour windows: hours 0 and 1 are one window.
    expect(rangeStats(hours, 0, 7 * HOUR_MS, 2 * HOUR_MS).windows).toBe(2);
  });

  it('needs both enough calls and enough windows', () => {
    const s = rangeStats([[0, h({ calls: 100 })]], 0, HOUR_MS, HOUR_MS);
    expect(hasCallEvidence(s, evidence)).toBe(false);
    expect(perWindow(s, evidence).calls).toBeNull();
  });
});
