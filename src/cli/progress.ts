/** Progress on long CLI work: a bar on a terminal's stderr, a line every tenth otherwise, or nothing. */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

const NONE: Progress = { update: () => {}, stop: () => {} };

/**
 * `label` names the work (`verifying`, `exporting`). `show: false` (e.g. --json) shows nothing;
 * off a terminal, `lines` prints `label: done/total` at each tenth of long runs (≥ 10,000).
 */
export function progress(label: string, opts: { show: boolean; lines?: boolean; unit?: string }): Progress {
  if (!opts.show) return NONE;
  const unit = opts.unit ?? 'entries';
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {eta}s left`,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total) {
        if (!started) {
          bar.start(total, 0);
          started = true;
        }
        bar.update(done);
      },
      stop: () => {
        if (started) bar.stop();
      },
    };
  }
  if (!opts.lines) return NONE;
  let lastTenth = -1;
  return {
    update(done, total) {
      const tenth = total === 0 ? 10 : Math.floor((done / total) * 10);
      if (tenth !== lastTenth && total >= 10_000) {
        lastTenth = tenth;
        process.stderr.write(`${label}: ${done}/${total} ${unit}\n`);
      }
    },
    stop: () => {},
  };
}
