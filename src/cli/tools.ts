/**
 * `warden tools list|show|approve`: upstream tools and their pinned definitions
 * (issue #7). Talks to the running gateway's admin API like `warden approvals`,
 * so an approval is checked (admin role, the reviewed hash), audited with the
 * operator's name, and published to agents at once.
 */
import type { Command } from 'commander';
import { type ApiOptions, run, withApiOptions } from './approvals.js';
import { printJson } from './output.js';

type Row = Record<string, unknown>;

function line(t: Row): string {
  const by = t.status === 'approved' && t.approvedBy ? ` by ${String(t.approvedBy)}` : '';
  const score =
    typeof t.injectionScore === 'number' && t.injectionScore > 0 ? `  injection ${t.injectionScore}` : '';
  return `${String(t.name)}  ${String(t.status)}${by}  ${String(t.upstream)}/${String(t.upstreamName)}  ${String(t.hash).slice(0, 12)}${score}`;
}

const indent = (text: string, width: number) => text.replaceAll('\n', `\n${' '.repeat(width + 2)}`);

function details(t: Row): string {
  const rows: Array<[string, unknown]> = [
    ['name', t.name],
    ['upstream', `${String(t.upstream)} (as ${String(t.upstreamName)})`],
    ['status', t.status],
    ['hash', t.hash],
    ['approved hash', t.approvedHash ?? '-'],
    ['approved', t.approvedAt ? `${String(t.approvedAt)} by ${String(t.approvedBy)}` : '-'],
    ['first seen', t.firstSeenAt ?? '-'],
    ['injection', JSON.stringify(t.inspection)],
  ];
  const changes = Array.isArray(t.changes) ? (t.changes as Row[]) : [];
  const width = Math.max(...rows.map(([k]) => k.length), 'definition'.length);
  const out = rows.map(([k, v]) => `${k.padEnd(width)}  ${String(v)}`);
  out.push(`${'definition'.padEnd(width)}  ${indent(JSON.stringify(t.definition, null, 2), width)}`);
  for (const ch of changes) {
    out.push(`${`changed`.padEnd(width)}  ${String(ch.field)}`);
    out.push(`${'  before'.padEnd(width)}  ${indent(JSON.stringify(ch.before, null, 2), width)}`);
    out.push(`${'  after'.padEnd(width)}  ${indent(JSON.stringify(ch.after, null, 2), width)}`);
  }
  return `${out.join('\n')}\n`;
}

/** Register `tools`. */
export function registerTools(program: Command): void {
  const tools = program
    .command('tools')
    .description(
      'Upstream tools and their pinned definitions: approve new or changed ones (talks to the running gateway)',
    )
    .addHelpText(
      'after',
      `
A tool reaches agents only when its definition (name, description, schemas) hashes to the one
approved. New tools wait in operator mode (pinning.mode) or when their description reads as an
injection; a changed definition is quarantined until an admin approves it again.

Authentication: --token TOKEN, or WARDEN_OPERATOR_TOKEN, or --as OPERATOR (listing needs the
admin, approver or auditor role, approving needs admin).

Examples:
  warden tools list --as root --status quarantined
  warden tools show lookup_order --as root
  warden tools approve lookup_order --as root --hash 3f1c…   # the hash you reviewed`,
    );

  withApiOptions(
    tools
      .command('list')
      .description('List every tool the upstreams list, with its pin status')
      .option('--status <status>', 'approved | pending | quarantined | unverified'),
  ).action(async (opts: ApiOptions & { status?: string }) => {
    await run(opts, async (api) => {
      const q = opts.status ? `?${new URLSearchParams({ status: opts.status })}` : '';
      const body = (await api('GET', `/admin/v1/tools${q}`)) as { tools: Row[] };
      if (opts.json) return printJson(body);
      if (body.tools.length === 0) return void process.stdout.write('no tools\n');
      for (const t of body.tools) process.stdout.write(`${line(t)}\n`);
    });
  });

  withApiOptions(
    tools
      .command('show <name>')
      .description('Show a tool in full: its definition, hash, injection score, and what changed'),
  ).action(async (name: string, opts: ApiOptions) => {
    await run(opts, async (api) => {
      const body = (await api('GET', `/admin/v1/tools/${encodeURIComponent(name)}`)) as { tool: Row };
      if (opts.json) return printJson(body);
      process.stdout.write(details(body.tool));
    });
  });

  withApiOptions(
    tools
      .command('approve <name>')
      .description('Approve the definition a tool has now (admin): publishes it to agents')
      .option('--hash <sha256>', 'only if the definition still has this hash (the one you reviewed)')
      .option('--comment <text>', 'why (recorded)'),
  ).action(async (name: string, opts: ApiOptions & { hash?: string; comment?: string }) => {
    await run(opts, async (api) => {
      const body = (await api('POST', `/admin/v1/tools/${encodeURIComponent(name)}/approve`, {
        ...(opts.hash === undefined ? {} : { hash: opts.hash }),
        ...(opts.comment === undefined ? {} : { comment: opts.comment }),
      })) as { tool: Row; repeated: boolean };
      if (opts.json) return printJson(body);
      process.stdout.write(`${body.repeated ? 'already approved' : 'approved'}: ${line(body.tool)}\n`);
    });
  });
}
