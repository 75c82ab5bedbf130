/**
 * `warden approvals list|show|approve|deny|review` and `warden operator token`.
 * The approvals commands talk to the running gateway's admin API with an
 * operator token, so a decision taken here goes through the same checks
 * (role, separation of duties, first decision wins), is audited the same way,
 * and wakes the waiting call at once.
 */
import type { Command } from 'commander';
import { ERROR_STATUS, WardenError, type WardenErrorCode } from '../errors.js';
import { parseDuration } from '../util/duration.js';
import { loadForCli } from './context.js';
import { printJson, reportError } from './output.js';

export interface ApiOptions {
  config?: string;
  url?: string;
  token?: string;
  as?: string;
  json?: boolean;
}

type Row = Record<string, unknown>;

/** Register `approvals` and `operator`. */
export function registerApprovals(program: Command): void {
  const operator = program.command('operator').description('Human operators (approvers, admins, auditors)');
  operator
    .command('token')
    .description(
      'Mint an operator token for the admin API (reads the signing keys from the store: anyone who can do this can act as any operator)',
    )
    .requiredOption('-o, --operator <id>', 'operator id (from operators: in the config)')
    .option('--ttl <duration>', 'lifetime, e.g. 1h (default approvals.operatorTokenTtl, at most 24h)')
    .option('--url <url>', "the gateway's public URL the token is for (default server.publicUrl)")
    .option('-c, --config <file>', 'config file')
    .option('--json', 'print JSON: token, operatorId, roles, expiresAt')
    .action(
      async (opts: { operator: string; ttl?: string; url?: string; config?: string; json?: boolean }) => {
        try {
          const { config } = await loadForCli(opts);
          let ttlMs = config.approvals.operatorTokenTtlMs;
          if (opts.ttl !== undefined) {
            try {
              ttlMs = parseDuration(opts.ttl);
            } catch (e) {
              throw new WardenError('INVALID_REQUEST', `--ttl: ${(e as Error).message}`);
            }
          }
          const issued = await mint(opts.config, opts.operator, ttlMs, opts.url);
          if (opts.json) printJson({ ...issued, expiresAt: new Date(issued.expiresAt).toISOString() });
          else process.stdout.write(`${issued.token}\n`);
        } catch (e) {
          reportError(e, opts.json);
        }
      },
    );

  const approvals = program
    .command('approvals')
    .description('Decide and review held tool calls (talks to the running gateway)')
    .addHelpText(
      'after',
      `
Authentication: --token TOKEN, or WARDEN_OPERATOR_TOKEN, or --as OPERATOR (mints a
5-minute operator token from the store's keys, like \`warden operator token\`).

Examples:
  warden approvals list --as alice
  warden approvals show apr_… --as alice
  warden approvals approve apr_… --as alice --comment "customer confirmed"
  warden approvals approve apr_… --as alice --set amountCents=2000    # edit before approve
  warden approvals deny apr_… --as alice --comment "not our customer"
  warden approvals review rev_… --as alice --verdict ok`,
    );

  withApiOptions(
    approvals
      .command('list')
      .description('List approval requests and review flags, newest first')
      .option('--status <status>', 'pending | approved | denied | expired | flagged | reviewed')
      .option('--kind <kind>', 'approval | review')
      .option('--agent <id>', 'only this agent')
      .option('--limit <n>', 'at most n (default 50)'),
  ).action(async (opts: ApiOptions & { status?: string; kind?: string; agent?: string; limit?: string }) => {
    await run(opts, async (api) => {
      const q = new URLSearchParams();
      for (const k of ['status', 'kind', 'agent', 'limit'] as const) if (opts[k]) q.set(k, opts[k] as string);
      const body = (await api('GET', `/admin/v1/approvals?${q}`)) as { approvals: Row[] };
      if (opts.json) return printJson(body);
      if (body.approvals.length === 0) return void process.stdout.write('no requests\n');
      for (const a of body.approvals) process.stdout.write(`${line(a)}\n`);
    });
  });

  withApiOptions(approvals.command('show <id>').description('Show one request in full')).action(
    async (id: string, opts: ApiOptions) => {
      await run(opts, async (api) => {
        const body = (await api('GET', `/admin/v1/approvals/${encodeURIComponent(id)}`)) as { approval: Row };
        if (opts.json) return printJson(body);
        process.stdout.write(details(body.approval));
      });
    },
  );

  withApiOptions(
    approvals
      .command('approve <id>')
      .description('Approve a pending request (optionally with edited arguments)')
      .option('--comment <text>', 'why (recorded)')
      .option(
        '--set <key=value>',
        'replace one argument (value parsed as JSON when it is JSON, else a string); repeatable',
        (v: string, prev: string[] = []) => [...prev, v],
      )
      .option('--arguments <json>', 'replace arguments: a JSON object of top-level values'),
  ).action(
    async (id: string, opts: ApiOptions & { comment?: string; set?: string[]; arguments?: string }) => {
      await run(opts, async (api) => {
        const patch = patchOf(opts.set, opts.arguments);
        const body = (await api('POST', `/admin/v1/approvals/${encodeURIComponent(id)}/approve`, {
          ...(opts.comment === undefined ? {} : { comment: opts.comment }),
          ...(patch === undefined ? {} : { arguments: patch }),
        })) as { approval: Row; repeated: boolean };
        if (opts.json) return printJson(body);
        process.stdout.write(`${body.repeated ? 'already approved' : 'approved'}: ${line(body.approval)}\n`);
      });
    },
  );

  withApiOptions(
    approvals
      .command('deny <id>')
      .description('Deny a pending request')
      .option('--comment <text>', 'why (recorded)'),
  ).action(async (id: string, opts: ApiOptions & { comment?: string }) => {
    await run(opts, async (api) => {
      const body = (await api('POST', `/admin/v1/approvals/${encodeURIComponent(id)}/deny`, {
        ...(opts.comment === undefined ? {} : { comment: opts.comment }),
      })) as { approval: Row; repeated: boolean };
      if (opts.json) return printJson(body);
      process.stdout.write(`${body.repeated ? 'already denied' : 'denied'}: ${line(body.approval)}\n`);
    });
  });

  withApiOptions(
    approvals
      .command('review <id>')
      .description('Record a verdict on a flagged (medium-risk) call')
      .requiredOption('--verdict <verdict>', 'ok | concern')
      .option('--comment <text>', 'why (recorded)'),
  ).action(async (id: string, opts: ApiOptions & { verdict: string; comment?: string }) => {
    await run(opts, async (api) => {
      const body = (await api('POST', `/admin/v1/approvals/${encodeURIComponent(id)}/review`, {
        verdict: opts.verdict,
        ...(opts.comment === undefined ? {} : { comment: opts.comment }),
      })) as { approval: Row; repeated: boolean };
      if (opts.json) return printJson(body);
      process.stdout.write(`reviewed (${opts.verdict}): ${line(body.approval)}\n`);
    });
  });
}

/** The options every admin-API command takes. */
export const withApiOptions = (cmd: Command) =>
  cmd
    .option('--url <url>', 'gateway URL (default server.publicUrl from the config)')
    .option('--token <token>', 'operator token (default $WARDEN_OPERATOR_TOKEN)')
    .option('--as <operator>', 'mint a short-lived operator token for this operator from the store')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'print JSON');

export type Api = (method: string, path: string, body?: unknown) => Promise<unknown>;

/** Runs `fn` with an admin-API caller authenticated as an operator; errors are reported, never thrown. */
export async function run(opts: ApiOptions, fn: (api: Api) => Promise<void>): Promise<void> {
  try {
    const { config } = await loadForCli(opts);
    const base = (opts.url ?? config.server.publicUrl).replace(/\/+$/, '');
    let token = opts.token ?? process.env.WARDEN_OPERATOR_TOKEN;
    if (opts.as !== undefined) token = (await mint(opts.config, opts.as, 5 * 60_000, base)).token;
    if (!token) {
      throw new WardenError(
        'OPERATOR_UNAUTHENTICATED',
        'an operator token is needed: --token, $WARDEN_OPERATOR_TOKEN, or --as OPERATOR',
      );
    }
    const api: Api = async (method, path, body) => {
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            'x-warden-client': 'cli',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(30_000),
        });
      } catch (e) {
        throw new WardenError(
          'UPSTREAM_UNAVAILABLE',
          `cannot reach the gateway at ${base}: ${(e as Error).message}`,
        );
      }
      const json = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
      if (!res.ok) {
        const code = (json.error?.code ?? 'INTERNAL') as WardenErrorCode;
        throw new WardenError(
          code in ERROR_STATUS ? code : 'INTERNAL',
          json.error?.message ?? `HTTP ${res.status}`,
        );
      }
      return json;
    };
    await fn(api);
  } catch (e) {
    reportError(e, opts.json);
  }
}

async function mint(configFile: string | undefined, operatorId: string, ttlMs: number, url?: string) {
  const { config } = await loadForCli({ ...(configFile ? { config: configFile } : {}) });
  const { openServices } = await import('../server/services.js');
  const { OperatorTokens } = await import('../approvals/index.js');
  const s = await openServices(config, url ? { publicUrl: url } : {});
  try {
    await s.keys.init();
    const tokens = new OperatorTokens({
      keys: s.keys,
      issuer: s.issuer,
      audience: `${s.audience}/admin`,
      operators: config.operators,
    });
    return await tokens.issue(operatorId, ttlMs);
  } finally {
    await s.store.close();
  }
}

/** `--set k=v` (JSON value when it parses, else the string) and `--arguments {...}` into one patch. */
export function patchOf(
  set: string[] | undefined,
  args: string | undefined,
): Record<string, unknown> | undefined {
  let patch: Record<string, unknown> | undefined;
  if (args !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(args);
    } catch {
      throw new WardenError('INVALID_REQUEST', '--arguments must be a JSON object');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new WardenError('INVALID_REQUEST', '--arguments must be a JSON object');
    }
    patch = { ...(parsed as Record<string, unknown>) };
  }
  for (const kv of set ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new WardenError('INVALID_REQUEST', `--set expects key=value, got "${kv}"`);
    const key = kv.slice(0, eq);
    const raw = kv.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // Not JSON: the string as typed.
    }
    patch = { ...(patch ?? {}), [key]: value };
  }
  return patch;
}

function line(a: Row): string {
  const who = a.decidedBy ? ` by ${String(a.decidedBy)}` : '';
  const until = a.status === 'pending' ? ` until ${String(a.expiresAt)}` : '';
  return `${String(a.id)}  ${String(a.status)}${who}${until}  ${String(a.toolName)} (${String(a.risk)})  agent ${String(a.agentId)}${a.userId ? ` for ${String(a.userId)}` : ''}`;
}

function details(a: Row): string {
  const rows: Array<[string, unknown]> = [
    ['id', a.id],
    ['kind', a.kind],
    ['status', a.status],
    ['tool', a.toolName],
    [
      'risk',
      a.configuredRisk === a.risk ? a.risk : `${String(a.risk)} (configured ${String(a.configuredRisk)})`,
    ],
    ['agent', `${String(a.agentId)} (${String(a.agentType)})`],
    ['acting for', a.userId ?? '-'],
    ['reasoning', a.reasoning ?? '-'],
    ['rule', a.rule],
    ['policies', Array.isArray(a.policyIds) && a.policyIds.length > 0 ? a.policyIds.join(', ') : '-'],
    ['trace', a.traceId],
    ['created', a.createdAt],
    ['expires', a.expiresAt ?? '-'],
    [
      'decided',
      a.decidedAt ? `${String(a.decidedAt)} by ${String(a.decidedBy)} via ${String(a.decidedVia)}` : '-',
    ],
    ['comment', a.comment ?? '-'],
    ['verdict', a.verdict ?? '-'],
    ['edited', a.argumentPatch ? JSON.stringify(a.argumentPatch) : '-'],
    ['used', a.usedAt ?? '-'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const out = rows.map(([k, v]) => `${k.padEnd(width)}  ${String(v)}`);
  out.push(
    `${'arguments'.padEnd(width)}  ${JSON.stringify(a.arguments, null, 2).replaceAll('\n', `\n${' '.repeat(width + 2)}`)}`,
  );
  return `${out.join('\n')}\n`;
}
