/**
 * The off-hours rule's clock: local weekday and time in an IANA zone, through
 * `Intl.DateTimeFormat` (no time-zone library), computed at most once a minute.
 */
import type { MonitoringConfig, MonitorWeekday } from '../../config/index.js';

type OffHoursConfig = MonitoringConfig['anomalies']['offHours'];

const WEEKDAYS: readonly MonitorWeekday[] = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

function minutes(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

/** Whether a moment falls in the configured active hours and days. */
export class ActiveHours {
  private readonly format: Intl.DateTimeFormat;
  private readonly start: number;
  private readonly end: number;
  private readonly days: ReadonlySet<string>;
  private cachedMinute = Number.NaN;
  private cached = { weekday: 'Mon' as MonitorWeekday, minute: 0 };

  constructor(readonly config: OffHoursConfig) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: config.timezone,
      hourCycle: 'h23',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
    });
    const [from, to] = config.hours.split('-') as [string, string];
    this.start = minutes(from);
    this.end = minutes(to);
    this.days = new Set(config.days);
  }

  /** Local weekday and minute of the day at `ts`. */
  local(ts: number): { weekday: MonitorWeekday; minute: number } {
    const minute = Math.floor(ts / 60_000);
    if (minute !== this.cachedMinute) {
      const parts: Record<string, string> = {};
      for (const p of this.format.formatToParts(new Date(ts))) parts[p.type] = p.value;
      this.cached = {
        weekday: WEEKDAYS.find((d) => d === parts['weekday']) ?? 'Mon',
        minute: Number(parts['hour']) * 60 + Number(parts['minute']),
      };
      this.cachedMinute = minute;
    }
    return this.cached;
  }

  /**
   * Inside the active hours on an active day. The day is the moment's own local weekday, also
   * for hours that wrap midnight: with days Mon–Fri and hours 22:00-06:00, Saturday 02:00 is off.
   */
  isActive(ts: number): boolean {
    const { weekday, minute } = this.local(ts);
    if (!this.days.has(weekday)) return false;
    return this.start < this.end
      ? minute >= this.start && minute < this.end
      : minute >= this.start || minute < this.end;
  }

  /** `Sat 03:12`: the local time as an operator reads it. */
  describe(ts: number): string {
    const { weekday, minute } = this.local(ts);
    const hh = String(Math.floor(minute / 60)).padStart(2, '0');
    const mm = String(minute % 60).padStart(2, '0');
    return `${weekday} ${hh}:${mm}`;
  }
}
