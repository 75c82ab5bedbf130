/**
 * Loading `warden.yaml`: read, parse (keeping positions), validate, then
 * resolve what needs the file system — paths, the store URL's secret, agents'
 * key files. Every problem is reported at once, as `file:line:col: path: message`.
 * Upstream credentials stay references; they are resolved when used.
 */

import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { WardenError } from '../errors.js';
import { DEFAULTS } from './constants.js';
import { embeddedDefault } from './defaults.js';
import { isSensitivePath } from './describe.js';
import { checkPublicJwk, checkStoreUrl } from './fields.js';
import { type ConfigIssue, formatPath, fromZodIssue } from './issues.js';
import { type ConfigFile, configFileSchema, uniquenessIssues } from './schema.js';
import { resolveApprovalSections } from './schema-approvals.js';
import { resolveAudit } from './schema-audit.js';
import { describeRef, resolveSecret } from './secrets.js';
import { locate, parseYaml, type YamlSource } from './source.js';
import type { AgentConfig, SecretRef, UpstreamConfig, WardenConfig } from './types.js';

/** Options for {@link loadConfig}; all injectable for tests. */
export interface LoadConfigOptions {
  /** Directory a relative config path is resolved against (and the embedded default's base). */
  cwd?: string;
  /** Environment used to resolve `{env}` references at load (the store URL). */
  env?: NodeJS.ProcessEnv;
  /** Current time (epoch ms). */
  now?: number;
}

/** A loaded configuration and the non-fatal remarks about it. */
export interface LoadedConfig {
  config: WardenConfig;
  warnings: string[];
}

/** A problem with its position in the file, as carried in the error's `data.issues`. */
export interface LocatedIssue {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
}

const SECRET_LIKE_ENV = /SECRET|TOKEN|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL/i;

/** Load and validate the config file at `path`, or return the embedded default when `path` is undefined. */
export async function loadConfig(
  path: string | undefined,
  opts: LoadConfigOptions = {},
): Promise<LoadedConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const now = opts.now ?? Date.now();
  if (path === undefined) return { config: embeddedDefault({ cwd, now }), warnings: [] };

  const abs = resolve(cwd, path);
  const rel = relative(cwd, abs);
  const shown = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : (code ?? 'read error');
    throw new WardenError('CONFIG_INVALID', `${shown}: cannot read the config file (${why})`, { cause: e });
  }

  const src = parseYaml(text);
  if (src.errors.length > 0) {
    const lines = src.errors.map((e) => `${shown}:${e.line}:${e.col}: YAML syntax error: ${e.message}`);
    throw new WardenError('CONFIG_INVALID', lines.join('\n'));
  }
  const warnings = src.warnings.map((w) => `${shown}:${w.line}:${w.col}: ${w.message}`);

  let raw: unknown;
  try {
    raw = src.doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    throw new WardenError('CONFIG_INVALID', `${shown}: ${(e as Error).message}`);
  }

  const parsed = configFileSchema.safeParse(raw);
  const issues: ConfigIssue[] = [
    ...(parsed.success ? [] : parsed.error.issues.flatMap((i) => fromZodIssue(i, raw))),
    ...uniquenessIssues(raw),
  ];
  if (!parsed.success || issues.length > 0) throw invalid(shown, src, issues);

  const ctx: ResolveContext = { dir: dirname(abs), env: opts.env ?? process.env, problems: [] };
  const config = await resolveConfig(parsed.data, abs, ctx);
  if (ctx.problems.length > 0) throw invalid(shown, src, ctx.problems);

  for (const w of collectWarnings(parsed.data, config, now)) {
    const { line, col } = locate(src, w.path);
    warnings.push(`${shown}:${line}:${col}: ${formatPath(w.path)}: ${w.message}`);
  }
  return { config, warnings };
}

function invalid(shown: string, src: YamlSource, issues: ConfigIssue[]): WardenError {
  const seen = new Set<string>();
  const located: LocatedIssue[] = [];
  for (const i of issues) {
    const { line, col } = locate(src, i.path, i.atKey === true);
    const item = { file: shown, line, col, path: formatPath(i.path), message: i.message };
    const key = `${line}:${col}:${item.path}:${item.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    located.push(item);
  }
  located.sort((a, b) => a.line - b.line || a.col - b.col);
  const lines = located.map((i) => `${i.file}:${i.line}:${i.col}: ${i.path}: ${i.message}`);
  return new WardenError('CONFIG_INVALID', lines.join('\n'), { data: { issues: located } });
}

interface ResolveContext {
  /** The config file's directory: relative paths in the file are relative to it. */
  dir: string;
  env: NodeJS.ProcessEnv;
  problems: ConfigIssue[];
}

function absoluteRef<R extends SecretRef>(ref: R, dir: string): R {
  return 'file' in ref ? { ...ref, file: resolve(dir, ref.file) } : ref;
}

function mapValues<A, B>(o: Record<string, A>, f: (a: A) => B): Record<string, B> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
}

async function resolveStoreUrl(
  url: string | SecretRef,
  dataDir: string,
  ctx: ResolveContext,
): Promise<string> {
  let value: string;
  if (typeof url === 'string') {
    value = url;
  } else {
    const ref = absoluteRef(url, ctx.dir);
    try {
      value = await resolveSecret(ref, ctx.env);
    } catch (e) {
      ctx.problems.push({ path: ['store', 'url'], message: (e as Error).message });
      return '';
    }
    const problem = checkStoreUrl(value, true);
    if (problem !== null) {
      // The value is a secret: name where it came from, never what it is.
      ctx.problems.push({
        path: ['store', 'url'],
        message: `the URL from ${describeRef(ref)} is invalid: ${problem}`,
      });
      return '';
    }
  }
  if (!value.startsWith('sqlite:')) return value;
  const file = value.slice('sqlite:'.length);
  return file === ':memory:' || isAbsolute(file) ? value : `sqlite:${resolve(dataDir, file)}`;
}

async function readPublicJwk(file: string, path: PropertyKey[], ctx: ResolveContext) {
  const abs = resolve(ctx.dir, file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'read error';
    ctx.problems.push({ path, message: `cannot read the public key file ${abs} (${code})` });
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse messages quote the input; a misplaced private key must not end up in logs.
    ctx.problems.push({ path, message: `the public key file ${abs} is not valid JSON` });
    return undefined;
  }
  const r = checkPublicJwk(json);
  if (r.ok) return r.value;
  for (const i of r.issues) ctx.problems.push({ path, message: `${abs}: ${i.message}` });
  return undefined;
}

async function resolveAgent(
  a: ConfigFile['agents'][number],
  i: number,
  ctx: ResolveContext,
): Promise<AgentConfig> {
  let publicJwk: Record<string, unknown> | undefined;
  if (a.publicKey !== undefined) {
    publicJwk =
      'jwk' in a.publicKey
        ? a.publicKey.jwk
        : await readPublicJwk(a.publicKey.file, ['agents', i, 'publicKey', 'file'], ctx);
  }
  const { maxToolCalls, allowedCidrs } = a.constraints;
  return {
    id: a.id,
    type: a.type,
    version: a.version,
    environment: a.environment,
    owner: a.owner,
    expiresAt: a.expiresAt,
    maxConcurrentSessions: a.maxConcurrentSessions,
    allowedTools: a.allowedTools,
    deniedTools: a.deniedTools,
    ...(a.scopes.length === 0 ? {} : { scopes: a.scopes }),
    ...(publicJwk === undefined ? {} : { publicJwk }),
    ...(a.delegation === undefined ? {} : { delegation: a.delegation }),
    constraints: {
      ...(maxToolCalls === undefined ? {} : { maxToolCalls }),
      ...(allowedCidrs === undefined ? {} : { allowedCidrs }),
    },
  };
}

function resolveUpstream(u: ConfigFile['upstreams'][number], dir: string): UpstreamConfig {
  const common = { name: u.name, timeoutMs: u.timeout, connectTimeoutMs: u.connectTimeout };
  if (u.transport === 'http') {
    return {
      ...common,
      transport: 'http',
      url: u.url,
      ...(u.relay.sampling || u.relay.elicitation || u.relay.roots ? { relay: { ...u.relay } } : {}),
      ...(u.maxResultBytes === DEFAULTS.upstreamMaxResultBytes ? {} : { maxResultBytes: u.maxResultBytes }),
      credentials: {
        headers: mapValues(u.credentials.headers, (r) => absoluteRef(r, dir)),
        ...(u.credentials.oauth === undefined
          ? {}
          : {
              oauth: {
                tokenUrl: u.credentials.oauth.tokenUrl,
                clientId: u.credentials.oauth.clientId,
                clientSecret: absoluteRef(u.credentials.oauth.clientSecret, dir),
                ...(u.credentials.oauth.scope === undefined ? {} : { scope: u.credentials.oauth.scope }),
                ...(u.credentials.oauth.resource === undefined
                  ? {}
                  : { resource: u.credentials.oauth.resource }),
                ...(u.credentials.oauth.audience === undefined
                  ? {}
                  : { audience: u.credentials.oauth.audience }),
              },
            }),
        ...(u.credentials.userOAuth === undefined
          ? {}
          : {
              userOAuth: {
                issuer: u.credentials.userOAuth.issuer,
                clientId: u.credentials.userOAuth.clientId,
                scopes: u.credentials.userOAuth.scopes,
                ...(u.credentials.userOAuth.clientSecret === undefined
                  ? {}
                  : { clientSecret: absoluteRef(u.credentials.userOAuth.clientSecret, dir) }),
                ...(u.credentials.userOAuth.resource === undefined
                  ? {}
                  : { resource: u.credentials.userOAuth.resource }),
              },
            }),
      },
    };
  }
  return {
    ...common,
    transport: 'stdio',
    command: u.command,
    args: u.args,
    ...(u.cwd === undefined ? {} : { cwd: resolve(dir, u.cwd) }),
    env: u.env,
    credentials: { env: mapValues(u.credentials.env, (r) => absoluteRef(r, dir)) },
  };
}

async function resolveConfig(file: ConfigFile, abs: string, ctx: ResolveContext): Promise<WardenConfig> {
  const dataDir = resolve(ctx.dir, file.dataDir);
  const [storeUrl, agents] = await Promise.all([
    resolveStoreUrl(file.store.url, dataDir, ctx),
    Promise.all(file.agents.map((a, i) => resolveAgent(a, i, ctx))),
  ]);
  file.upstreams.forEach((u, i) => {
    if (u.transport === 'http' && u.credentials.userOAuth && !file.oauth.tokenKey) {
      ctx.problems.push({
        path: ['upstreams', i, 'credentials', 'userOAuth'],
        message:
          "users' upstream tokens are stored encrypted: set oauth.tokenKey to a reference to 32 random bytes (e.g. openssl rand -base64 32)",
      });
    }
  });
  return {
    source: abs,
    dataDir,
    server: file.server,
    store: { url: storeUrl },
    tokens: file.tokens,
    upstreams: file.upstreams.map((u) => resolveUpstream(u, ctx.dir)),
    agents,
    tools: file.tools,
    policy: { ...file.policy, files: file.policy.files.map((f) => resolve(ctx.dir, f)) },
    limits: await resolveLimits(file.limits, ctx),
    ...withAbsoluteRefs(resolveApprovalSections(file), ctx.dir),
    // A relative secret file is relative to the config file, like every other path in it.
    identityProviders: file.identityProviders.map((p) =>
      p.login?.clientSecret
        ? { ...p, login: { ...p.login, clientSecret: absoluteRef(p.login.clientSecret, ctx.dir) } }
        : p,
    ),
    oauth: file.oauth.tokenKey
      ? { ...file.oauth, tokenKey: absoluteRef(file.oauth.tokenKey, ctx.dir) }
      : file.oauth,
    inspection: file.inspection.classifier
      ? {
          ...file.inspection,
          classifier: {
            ...file.inspection.classifier,
            headers: mapValues(file.inspection.classifier.headers, (r) => absoluteRef(r, ctx.dir)),
          },
        }
      : file.inspection,
    taint: file.taint,
    pinning: file.pinning,
    monitoring: file.monitoring,
    breakers: file.breakers,
    tracing: file.tracing,
    audit: resolveAudit(file.audit, ctx.dir, dataDir),
    log: file.log,
  };
}

/** Secret files of the notifiers are relative to the config file, like every other path in it. */
function withAbsoluteRefs<T extends { notifiers: WardenConfig['notifiers'] }>(sections: T, dir: string): T {
  const n = sections.notifiers;
  return {
    ...sections,
    notifiers: {
      ...n,
      ...(n.slack === undefined
        ? {}
        : {
            slack: {
              ...n.slack,
              botToken: absoluteRef(n.slack.botToken, dir),
              signingSecret: absoluteRef(n.slack.signingSecret, dir),
            },
          }),
      webhooks: n.webhooks.map((w) => ({ ...w, secret: absoluteRef(w.secret, dir) })),
    },
  };
}

function collectWarnings(file: ConfigFile, config: WardenConfig, now: number): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  config.agents.forEach((a, i) => {
    if (a.expiresAt <= now) {
      out.push({
        path: ['agents', i, 'expiresAt'],
        message: `agent "${a.id}" expired at ${new Date(a.expiresAt).toISOString()}; its sessions will be refused`,
      });
    }
    for (const t of a.allowedTools.filter((t) => a.deniedTools.includes(t))) {
      out.push({
        path: ['agents', i, 'allowedTools'],
        message: `"${t}" is in both allowedTools and deniedTools; deniedTools wins`,
      });
    }
  });
  file.upstreams.forEach((u, i) => {
    if (u.transport !== 'stdio') return;
    for (const k of Object.keys(u.env)) {
      const path = ['upstreams', i, 'env', k];
      if (SECRET_LIKE_ENV.test(k) && !isSensitivePath(path)) {
        out.push({
          path,
          message: `"${k}" looks like a secret; move it to credentials.env as {env: …} or {file: …}`,
        });
      }
    }
  });
  return out;
}

async function resolveLimits(l: ConfigFile['limits'], ctx: ResolveContext): Promise<WardenConfig['limits']> {
  let redisUrl: string | undefined;
  if (l.redis !== undefined) {
    const ref = l.redis.url;
    if (typeof ref === 'string') redisUrl = ref;
    else {
      try {
        redisUrl = await resolveSecret(absoluteRef(ref, ctx.dir), ctx.env);
      } catch (e) {
        ctx.problems.push({ path: ['limits', 'redis', 'url'], message: (e as Error).message });
      }
    }
  }
  return {
    store: l.store,
    ...(redisUrl === undefined ? {} : { redisUrl }),
    ...(l.redis === undefined ? {} : { redisTimeoutMs: l.redis.timeout }),
    namespace: l.namespace,
    onStoreDown: l.onStoreDown,
    rates: l.rates.map((r) => ({
      per: r.per,
      ...(r.tool === undefined ? {} : { tool: r.tool }),
      points: r.points,
      durationMs: r.duration,
    })),
    budgets: l.budgets.map((b) => ({
      per: b.per,
      ...(b.tool === undefined ? {} : { tool: b.tool }),
      amount: b.amount,
      periodMs: b.period,
    })),
  };
}
