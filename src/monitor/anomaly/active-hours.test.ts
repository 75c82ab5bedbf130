import { describe, expect, it } from 'vitest';
import { ActiveHours } from './active-hours.js';

const hours = (over: Partial<ConstructorParameters<typeof ActiveHours>[0]> = {}) =>
  new ActiveHours({
    enabled: true,
    timezone: 'Europe/Paris',
    days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'],
    hours: '08:00-18:00',
    ...over,
  });

describe('ActiveHours', () => {
  it('reads local time in the zone, across a daylight-saving change', () => {
    const h = hours();
    // Winter: UTC+1. 07:00 UTC is 08:00 in Paris (start inclusive), 17:00 UTC is 18:00 (end exclusive).
    expect(h.isActive(Date.UTC(2026, 10, 25, 7, 0))).toBe(true);
    expect(h.isActive(Date.UTC(2026, 10, 25, 6, 59))).toBe(false);
    expect(h.isActive(Date.UTC(2026, 10, 25, 17, 0))).toBe(false);
    expect(h.describe(Date.UTC(2026, 10, 25, 16, 59))).toBe('Wed 17:59');
    // Summer: UTC+2. 06:30 UTC on Wednesday 1 July 2026 is 08:30 in Paris.
    expect(h.isActive(Date.UTC(2026, 6, 1, 6, 30))).toBe(true);
    expect(h.describe(Date.UTC(2026, 6, 1, 6, 30))).toBe('Wed 08:30');
  });

  it('takes the moment’s own weekday, and windows that wrap midnight', () => {
    const night = hours({ timezone: 'UTC', hours: '22:00-06:00' });
    expect(night.isActive(Date.UTC(2026, 10, 25, 23, 0))).toBe(true); // Wed 23:00
    expect(night.isActive(Date.UTC(2026, 10, 26, 5, 59))).toBe(true); // Thu 05:59
    expect(night.isActive(Date.UTC(2026, 10, 26, 6, 0))).toBe(false);
    expect(night.isActive(Date.UTC(2026, 10, 28, 2, 0))).toBe(false); // Saturday
    const allDay = hours({ timezone: 'UTC', hours: '00:00-24:00', days: ['Sun'] });
    expect(allDay.isActive(Date.UTC(2026, 10, 29, 23, 59))).toBe(true);
    expect(allDay.describe(Date.UTC(2026, 10, 29, 0, 0))).toBe('Sun 00:00');
  });
});
