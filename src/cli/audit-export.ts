/**
 * `warden audit export`: the audit log as JSON Lines for a SIEM, one entry per
 * line exactly as stored (hashes included, so the receiver can re-check the
 * chain), filtered, page by page (memory stays flat), up to the head as it was
 * when the export began. With `--out`, the file appears whole or not at all.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { AuditFilter, LineSink } from '../audit/index.js';
import { WardenError } from '../errors.js';
import { loadForCli } from './context.js';
import { reportError } from './output.js';
import { progress } from './progress.js';

interface ExportOptions {
  config?: string;
  json?: boolean;
  since?: string;
  until?: string;
  afterSeq?: string;
  event: string[];
  agent?: string;
  format: string;
  out?: string;
}

const FORMATS = ['jsonl'];
const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function invalid(message: string): WardenError {
  return new WardenError('INVALID_REQUEST', message, { rule: 'request.shape' });
}

/** The flags as a filter and a starting seq; every mistake is INVALID_REQUEST naming the flag. */
export async function exportPlan(
  opts: ExportOptions,
  now: number,
): Promise<{ filter: AuditFilter; afterSeq: number }> {
  const { EVENT_NAME, parseTimeArg } = await import('../audit/index.js');
  if (!FORMATS.includes(opts.format)) {
    throw invalid(
      `--format: "${opts.format}" is not supported; the only format is jsonl (one JSON entry per line)`,
    );
  }
  const filter: AuditFilter = {};
  if (opts.since !== undefined) filter.sinceTs = parseTimeArg('--since', opts.since, now);
  if (opts.until !== undefined) filter.untilTs = parseTimeArg('--until', opts.until, now);
  if (filter.sinceTs !== undefined && filter.untilTs !== undefined && filter.sinceTs >= filter.untilTs) {
    throw invalid('--since must be before --until');
  }
  const events = opts.event
    .flatMap((e) => e.split(','))
    .map((e) => e.trim())
    .filter(Boolean);
  for (const e of events) {
    if (!EVENT_NAME.test(e))
      throw invalid(`--event: "${e}" is not an event name (e.g. TOOL_CALL, TOOL_DENIED)`);
  }
  if (events.length > 0) filter.events = [...new Set(events)];
  if (opts.agent !== undefined) {
    if (!AGENT_ID.test(opts.agent)) throw invalid(`--agent: "${opts.agent}" is not an agent id`);
    filter.agentId = opts.agent;
  }
  let afterSeq = 0;
  if (opts.afterSeq !== undefined) {
    if (!/^\d{1,15}$/.test(opts.afterSeq))
      throw invalid(`--after-seq: expected a whole number ≥ 0, got "${opts.afterSeq}"`);
    afterSeq = Number(opts.afterSeq);
  }
  return { filter, afterSeq };
}

/** A LineSink over a Node stream that waits for 'drain' when the stream's buffer is full. */
function streamSink(out: NodeJS.WritableStream): LineSink & { failed(): Error | undefined } {
  let error: Error | undefined;
  out.on('error', (e: Error) => {
    error ??= e;
  });
  return {
    failed: () => error,
    write(text) {
      if (error) return Promise.reject(error);
      if (out.write(text)) return Promise.resolve();
      return new Promise<void>((res, rej) => {
        const onDrain = () => {
          out.off('error', onError);
          res();
        };
        const onError = (e: Error) => {
          out.off('drain', onDrain);
          rej(e);
        };
        out.once('drain', onDrain);
        out.once('error', onError);
      });
    },
  };
}

/** Register `audit export` on the `audit` command group. */
export function registerAuditExport(audit: Command): void {
  audit
    .command('export')
    .description('Export audit entries as JSON Lines (one entry per line, exactly as stored) for a SIEM')
    .option(
      '--since <time>',
      'entries at or after: an ISO 8601 date-time (2025-01-31T08:00:00Z), a date, or a duration ago (24h, 7d)',
    )
    .option('--until <time>', 'entries before (same forms as --since)')
    .option('--after-seq <n>', 'entries after this seq (resume where an earlier export ended)')
    .option(
      '--event <name>',
      'only these events (repeat the flag or give a comma list)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--agent <id>', "only this agent's entries")
    .option('--format <format>', 'output format (jsonl only)', 'jsonl')
    .option('--out <file>', 'write to this file (written whole, then renamed into place); default stdout')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'print the summary as JSON (on stdout with --out, else on stderr)')
    .addHelpText(
      'after',
      `
Entries are exported up to the head as it was when the export began, in seq order.
Each line carries seq, hash and prevHash (the receiver can re-check the chain) and
actorType (AI_AGENT, HUMAN or SYSTEM).

Examples:
  warden audit export --since 24h --out audit-today.jsonl
  warden audit export --event TOOL_DENIED,APPROVAL_DENIED --agent support-bot | siem-forwarder
  warden audit export --after-seq 120000 --json --out next.jsonl`,
    )
    .action(async (opts: ExportOptions) => {
      const toFile = opts.out !== undefined;
      try {
        const plan = await exportPlan(opts, Date.now());
        const { config } = await loadForCli(opts);
        const { openStore } = await import('../store/index.js');
        const { exportJsonl } = await import('../audit/index.js');
        const store = await openStore(config.store.url);
        let file: { path: string; tmp: string; stream: WriteStream } | undefined;
        try {
          if (opts.out !== undefined) {
            const path = resolve(opts.out);
            // Beside the target, so the rename stays on one filesystem (atomic).
            const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
            file = { path, tmp, stream: createWriteStream(tmp, { flags: 'wx', mode: 0o600 }) };
          }
          const sink = streamSink(file?.stream ?? process.stdout);
          const bar = progress('exporting', { show: toFile && !opts.json, unit: 'seq' });
          let summary: Awaited<ReturnType<typeof exportJsonl>>;
          try {
            summary = await exportJsonl(store, sink, {
              filter: plan.filter,
              afterSeq: plan.afterSeq,
              onProgress: (d, t) => bar.update(d, t),
            });
          } finally {
            bar.stop();
          }
          const failed = sink.failed();
          if (failed) throw failed;
          if (file) {
            const f = file;
            await new Promise<void>((res, rej) => f.stream.end((e?: Error | null) => (e ? rej(e) : res())));
            await rename(f.tmp, f.path);
            file = undefined;
          }
          const result = {
            entries: summary.entries,
            firstSeq: summary.firstSeq,
            lastSeq: summary.lastSeq,
            headSeq: summary.throughSeq,
            ...(opts.out !== undefined ? { out: resolve(opts.out) } : {}),
          };
          if (opts.json) (toFile ? process.stdout : process.stderr).write(`${JSON.stringify(result)}\n`);
          else {
            const range = summary.firstSeq === null ? '' : ` (seq ${summary.firstSeq}..${summary.lastSeq})`;
            process.stderr.write(`exported ${summary.entries} entries${range}\n`);
          }
        } finally {
          if (file) {
            file.stream.destroy();
            await rm(file.tmp, { force: true });
          }
          await store.close();
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EPIPE') return; // the reader went away (| head)
        // With entries on stdout, a JSON error there would corrupt the stream: it goes to stderr.
        reportError(e, opts.json === true && toFile);
      }
    });
}
