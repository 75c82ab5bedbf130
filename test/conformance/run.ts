/**
 * Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned) against
 * our test upstream directly, and the same upstream through a real Warden gateway.
 *
 *   npx tsx test/conformance/run.ts [--target direct|warden|restrictive|all] [--scenario NAME] [--json] [--keep]
 *
 * See test/conformance/README.md. Exits non-zero on any unexpected result.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { parse as parseYaml } from 'yaml';
import { type AuthShim, startAuthShim } from './auth-shim.js';
import { type ConformanceUpstream, startConformanceUpstream } from './upstream.js';

export const CONFORMANCE_PACKAGE = '@modelcontextprotocol/conformance@0.1.16';
const HERE = fileURLToPath(new URL('.', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const WARDEN_MAIN = join(REPO, 'dist', 'src', 'cli', 'main.js');

/** The server scenarios of the pinned suite (`conformance list --server`), in its order. */
export const SCENARIOS = [
  'server-initialize',
  'logging-set-level',
  'ping',
  'completion-complete',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-with-logging',
  'tools-call-error',
  'tools-call-with-progress',
  'tools-call-sampling',
  'tools-call-elicitation',
  'json-schema-2020-12',
  'elicitation-sep1034-defaults',
  'server-sse-polling',
  'server-sse-multiple-streams',
  'elicitation-sep1330-enums',
  'resources-list',
  'resources-read-text',
  'resources-read-binary',
  'resources-templates-read',
  'resources-subscribe',
  'resources-unsubscribe',
  'prompts-list',
  'prompts-get-simple',
  'prompts-get-with-args',
  'prompts-get-embedded-resource',
  'prompts-get-with-image',
  'dns-rebinding-protection',
] as const;

/** The tool each tool scenario calls (for the restrictive target's denial check). */
const SCENARIO_TOOL: Record<string, string> = {
  'tools-call-simple-text': 'test_simple_text',
  'tools-call-image': 'test_image_content',
  'tools-call-audio': 'test_audio_content',
  'tools-call-embedded-resource': 'test_embedded_resource',
  'tools-call-mixed-content': 'test_multiple_content_types',
  'tools-call-with-logging': 'test_tool_with_logging',
  'tools-call-error': 'test_error_handling',
  'tools-call-with-progress': 'test_tool_with_progress',
  'tools-call-sampling': 'test_sampling',
  'tools-call-elicitation': 'test_elicitation',
  'json-schema-2020-12': 'json_schema_2020_12_tool',
  'elicitation-sep1034-defaults': 'test_elicitation_sep1034_defaults',
  'elicitation-sep1330-enums': 'test_elicitation_sep1330_enums',
  'server-sse-polling': 'test_reconnection',
};

/** Every tool the upstream offers. */
const ALL_TOOLS = [
  'test_simple_text',
  'test_image_content',
  'test_audio_content',
  'test_embedded_resource',
  'test_multiple_content_types',
  'test_tool_with_logging',
  'test_tool_with_progress',
  'test_error_handling',
  'test_sampling',
  'test_elicitation',
  'test_elicitation_sep1034_defaults',
  'test_elicitation_sep1330_enums',
  'json_schema_2020_12_tool',
  'test_reconnection',
];

/**
 * The restrictive agent may call only these two: content-only tools with no arguments, no side
 * effects, no calls back into the client. Everything else (sampling, elicitation, logging,
 * progress, errors, the 2020-12 schema tool, reconnection) must be refused cleanly.
 */
export const RESTRICTIVE_TOOLS = ['test_simple_text', 'test_image_content'];

/** Warden codes that mean "refused by configuration", i.e. a clean denial. */
const DENIAL_CODES = [
  'TOOL_DENIED',
  'TOOL_NOT_ALLOWED',
  'POLICY_DENIED',
  'INSUFFICIENT_SCOPE',
  'TOOL_UNKNOWN',
  'TOOL_NOT_APPROVED',
  'APPROVAL_REQUIRED',
  'APPROVAL_DENIED',
  'RESOURCE_NOT_ALLOWED',
  'PROMPT_NOT_ALLOWED',
];
const DENIAL_RE = new RegExp(`\\b(${DENIAL_CODES.join('|')})\\b`);
/** Failure messages that betray a crash, a hang or a broken protocol rather than a refusal. */
const BROKEN_RE =
  /timed? ?out|ECONNRESET|ECONNREFUSED|socket hang up|fetch failed|terminated|Internal error|-32603|INTERNAL|UPSTREAM_ERROR|UPSTREAM_UNAVAILABLE|Unexpected token|not valid JSON|Parse error/i;

const SUITE_TIMEOUT_MS = 5 * 60_000;
const HEALTH_TIMEOUT_MS = 30_000;
const CLI_TIMEOUT_MS = 60_000;

type Target = 'direct' | 'warden' | 'restrictive';
type Status = 'pass' | 'expected fail' | 'denied' | 'UNEXPECTED FAIL' | 'stale baseline' | 'MISSING';

interface Check {
  id: string;
  name?: string;
  status: string;
  errorMessage?: string;
  details?: unknown;
}

interface ScenarioRow {
  scenario: string;
  status: Status;
  /** The first FAILURE/WARNING message, or why a denial was judged clean. */
  note: string;
}

interface TargetResult {
  target: Target;
  ok: boolean;
  seconds: number;
  suiteExitCode: number | null;
  timedOut: boolean;
  rows: ScenarioRow[];
  error?: string;
  outputDir: string;
}

// ---------- process bookkeeping: every child is killed on exit ----------

const children = new Set<ChildProcess>();
const cleanups: Array<() => Promise<void> | void> = [];

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // spawned detached: its own process group (npx → node → conformance)
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

function spawnTracked(cmd: string, args: string[], opts: { cwd: string; logFile: string }): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
  for (const k of ['WARDEN_CONFIG', 'NODE_OPTIONS', 'DATABASE_URL']) delete env[k];
  const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const log = createWriteStream(opts.logFile);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('close', () => log.end());
  return child;
}

function waitExit(
  child: ChildProcess,
  timeoutMs: number,
): Promise<{ code: number | null; timedOut: boolean }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, timedOut: false });
      return;
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGTERM');
      setTimeout(() => killGroup(child, 'SIGKILL'), 3000).unref();
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut });
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  killGroup(child, 'SIGTERM');
  const t = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
  await done;
  clearTimeout(t);
}

let cleaningUp: Promise<void> | undefined;
function cleanupAll(): Promise<void> {
  cleaningUp ??= (async () => {
    for (const c of [...children]) await stopChild(c).catch(() => undefined);
    for (const f of cleanups.reverse()) await Promise.resolve(f()).catch(() => undefined);
  })();
  return cleaningUp;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: stopping every child process…\n`);
    // Synchronous kill first, in case the async cleanup cannot finish.
    for (const c of children) killGroup(c, 'SIGKILL');
    void cleanupAll().finally(() => process.exit(130));
  });
}
process.once('exit', () => {
  for (const c of children) killGroup(c, 'SIGKILL');
});

// ---------- helpers ----------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

/** The scenario names a baseline file lists under `server:`. */
export function readBaseline(file: string): string[] {
  if (!existsSync(file)) throw new Error(`baseline file not found: ${file}`);
  const doc = parseYaml(readFileSync(file, 'utf8')) as unknown;
  if (doc === null || doc === undefined) return [];
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new Error(`${file}: expected a mapping with a server: list`);
  const server = (doc as { server?: unknown }).server;
  if (server === undefined || server === null) return [];
  if (!Array.isArray(server) || server.some((s) => typeof s !== 'string')) {
    throw new Error(`${file}: server: must be a list of scenario names`);
  }
  const known = new Set<string>(SCENARIOS);
  const unknown = server.filter((s) => !known.has(s));
  if (unknown.length > 0) throw new Error(`${file}: unknown scenario(s): ${unknown.join(', ')}`);
  return server as string[];
}

/** checks.json of each scenario the suite wrote under `dir` (`server-<scenario>-<timestamp>/`). */
export function readChecks(dir: string): Map<string, Check[]> {
  const out = new Map<string, Check[]>();
  if (!existsSync(dir)) return out;
  // Longest names first, so `tools-call-error` never claims `tools-call-error-…` of another scenario.
  const names = [...SCENARIOS].sort((a, b) => b.length - a.length);
  for (const entry of readdirSync(dir)) {
    const scenario = names.find((n) => new RegExp(`^server-${n}-\\d{4}-`).test(entry));
    const file = join(dir, entry, 'checks.json');
    if (!scenario || !existsSync(file)) continue;
    try {
      out.set(scenario, JSON.parse(readFileSync(file, 'utf8')) as Check[]);
    } catch (e) {
      out.set(scenario, [
        { id: 'unreadable', status: 'FAILURE', errorMessage: `checks.json: ${(e as Error).message}` },
      ]);
    }
  }
  return out;
}

/** The suite's own rule: a scenario fails when any check is a FAILURE or a WARNING. */
function failed(checks: Check[]): Check[] {
  return checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
}

function firstNote(bad: Check[]): string {
  const c = bad[0];
  if (!c) return '';
  return `${c.status} ${c.id}: ${c.errorMessage ?? ''}`.replace(/\s+/g, ' ').trim();
}

/** A Warden denial code found anywhere in a value (a `_meta["warden/error"].code`, or a message naming one). */
function denialIn(value: unknown, depth = 0): string | undefined {
  if (depth > 12 || value === null || value === undefined) return undefined;
  if (typeof value === 'string') return DENIAL_RE.exec(value)?.[1];
  if (typeof value !== 'object') return undefined;
  const meta = (value as { _meta?: Record<string, unknown> })._meta;
  const code = (meta?.['warden/error'] as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && DENIAL_CODES.includes(code)) return code;
  for (const v of Object.values(value as Record<string, unknown>)) {
    const found = denialIn(v, depth + 1);
    if (found) return found;
  }
  return undefined;
}

// ---------- the suite ----------

async function runSuite(opts: {
  url: string;
  baseline: string;
  outDir: string;
  logFile: string;
  scenario?: string;
}): Promise<{ code: number | null; timedOut: boolean }> {
  const args = ['-y', '-p', 'node@22', '-p', CONFORMANCE_PACKAGE, 'conformance', 'server', '--url', opts.url];
  args.push(...(opts.scenario ? ['--scenario', opts.scenario] : ['--suite', 'all']));
  args.push('--expected-failures', opts.baseline, '-o', opts.outDir);
  const child = spawnTracked('npx', args, { cwd: REPO, logFile: opts.logFile });
  return waitExit(child, SUITE_TIMEOUT_MS);
}

function judge(
  checks: Map<string, Check[]>,
  baseline: string[],
  scenarios: readonly string[],
): Array<ScenarioRow & { failing: boolean }> {
  return scenarios.map((scenario) => {
    const cs = checks.get(scenario);
    const listed = baseline.includes(scenario);
    if (!cs)
      return {
        scenario,
        status: 'MISSING',
        note: 'the suite wrote no checks.json (crashed or timed out?)',
        failing: true,
      };
    const bad = failed(cs);
    if (bad.length === 0) {
      return listed
        ? {
            scenario,
            status: 'stale baseline',
            note: 'passes now: remove it from the baseline',
            failing: false,
          }
        : { scenario, status: 'pass', note: '', failing: false };
    }
    return {
      scenario,
      status: listed ? 'expected fail' : 'UNEXPECTED FAIL',
      note: firstNote(bad),
      failing: true,
    };
  });
}

// ---------- Warden ----------

interface Gateway {
  baseUrl: string;
  configFile: string;
  dir: string;
  logFile: string;
  agentId: string;
}

function wardenConfig(opts: {
  port: number;
  upstreamUrl: string;
  agentId: string;
  allowedTools: string[];
  /** Permit every resource read and prompt get (the permissive run); otherwise none is (default deny). */
  readAll: boolean;
}): string {
  const j = (v: unknown) => JSON.stringify(v);
  const lines = [
    '# Written by test/conformance/run.ts',
    'dataDir: data',
    'server:',
    '  host: 127.0.0.1',
    `  port: ${opts.port}`,
    'store:',
    '  url: sqlite:warden.db',
    'tokens:',
    '  ttl: 15m',
    '  maxToolCalls: 1000',
    'upstreams:',
    '  - name: conformance',
    '    transport: http',
    `    url: ${j(opts.upstreamUrl)}`,
    '    timeout: 30s',
    '    connectTimeout: 10s',
    // The scenario tools ask the client back: this upstream may use the agent's sampling,
    // elicitation and roots (off by default: upstreams[].relay).
    '    relay: { sampling: true, elicitation: true, roots: true }',
    'agents:',
    `  - id: ${opts.agentId}`,
    '    type: conformance-client',
    '    version: "1.0.0"',
    '    environment: test',
    '    owner: qa',
    '    expiresAt: 2099-01-01T00:00:00Z',
    '    maxConcurrentSessions: 100',
    `    allowedTools: ${j(opts.allowedTools)}`,
    '    deniedTools: []',
    '    constraints:',
    '      maxToolCalls: 1000',
    '      allowedCidrs: [127.0.0.0/8, "::1/128"]',
    // Every upstream tool is low risk (no human approval); denial comes only from allowedTools.
    'tools:',
    ...ALL_TOOLS.map((t) => `  ${t}: { risk: low }`),
    // The permissive policy: no rules beyond the agent's lists; no anomaly responses
    // (the restrictive run's denials would otherwise trip the denial-burst rule and hold the session).
    'policy:',
    ...(opts.readAll
      ? [
          // The permissive run: the agent may read every resource and get every prompt.
          '  rules:',
          '    - id: conformance-reads-all',
          '      effect: permit',
          `      agents: [${opts.agentId}]`,
          "      resources: ['*']",
          "      prompts: ['*']",
        ]
      : ['  rules: []']),
    'monitoring:',
    '  enabled: false',
    'log:',
    '  level: warn',
  ];
  return `${lines.join('\n')}\n`;
}

async function startGateway(
  dir: string,
  upstreamUrl: string,
  allowedTools: string[],
  readAll: boolean,
): Promise<Gateway> {
  if (!existsSync(WARDEN_MAIN)) {
    throw new Error(
      `${WARDEN_MAIN} is missing: run \`npm run build\` first (the gateway targets run the build)`,
    );
  }
  const port = await freePort();
  const agentId = 'conformance-agent';
  const configFile = join(dir, 'warden.yaml');
  writeFileSync(configFile, wardenConfig({ port, upstreamUrl, agentId, allowedTools, readAll }));
  const logFile = join(dir, 'gateway.log');
  const child = spawnTracked(process.execPath, [WARDEN_MAIN, 'start', '--config', configFile], {
    cwd: dir,
    logFile,
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `the gateway exited (${child.exitCode ?? child.signalCode}) before serving:\n${tail(logFile)}`,
      );
    }
    try {
      const r = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the gateway did not answer ${baseUrl}/healthz within ${HEALTH_TIMEOUT_MS / 1000}s:\n${tail(logFile)}`,
      );
    }
    await sleep(200);
  }
  return { baseUrl, configFile, dir, logFile, agentId };
}

async function issueToken(gw: Gateway): Promise<string> {
  const logFile = join(gw.dir, 'token-issue.log');
  const child = spawn(
    process.execPath,
    [WARDEN_MAIN, 'token', 'issue', '--agent', gw.agentId, '--config', gw.configFile],
    {
      cwd: gw.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const { code, timedOut } = await waitExit(child, CLI_TIMEOUT_MS);
  writeFileSync(logFile, `${out}\n--- stderr\n${err}`);
  const token = out.trim().split('\n').pop()?.trim() ?? '';
  if (timedOut || code !== 0 || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) {
    throw new Error(
      `warden token issue failed (exit ${code}${timedOut ? ', timed out' : ''}): ${err.trim() || out.trim()}`,
    );
  }
  return token;
}

/**
 * Warden bounds the MCP sessions one agent session (one token) may hold open (8 today), and the
 * suite opens a fresh MCP session per scenario without ending it; so, like an agent that starts
 * a new session now and then, the shim gets a new token every few MCP sessions.
 */
const SESSIONS_PER_TOKEN = 6;
function tokenPool(gw: Gateway): () => Promise<string> {
  let current: Promise<string> | undefined;
  let used = 0;
  return () => {
    if (!current || used >= SESSIONS_PER_TOKEN) {
      current = issueToken(gw);
      used = 0;
    }
    used++;
    return current;
  };
}

/** Call `tool` through the shim with a real MCP client; return the denial code it got, or why it is not one. */
async function probeDenial(shimUrl: string, tool: string): Promise<{ code?: string; why: string }> {
  const client = new Client({ name: 'warden-conformance-probe', version: '1.0.0' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(shimUrl));
  try {
    await client.connect(transport);
    const res = await client.callTool({ name: tool, arguments: {} }, undefined, { timeout: 15_000 });
    const code = denialIn(res);
    return code
      ? { code, why: `tools/call ${tool} → isError, _meta["warden/error"].code ${code}` }
      : { why: `tools/call ${tool} was not refused by Warden: ${JSON.stringify(res).slice(0, 200)}` };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const code = DENIAL_RE.exec(msg)?.[1];
    return code
      ? { code, why: `tools/call ${tool} → JSON-RPC error naming ${code}` }
      : { why: `tools/call ${tool} threw: ${msg}` };
  } finally {
    await client.close().catch(() => undefined);
  }
}

// ---------- targets ----------

interface RunContext {
  upstream: ConformanceUpstream;
  work: string;
  scenario?: string;
  scenarios: readonly string[];
}

async function runTarget(target: Target, ctx: RunContext): Promise<TargetResult> {
  const started = Date.now();
  const dir = mkdtempSync(join(ctx.work, `${target}-`));
  const outDir = join(dir, 'results');
  const result: TargetResult = {
    target,
    ok: false,
    seconds: 0,
    suiteExitCode: null,
    timedOut: false,
    rows: [],
    outputDir: outDir,
  };
  let shim: AuthShim | undefined;
  let gateway: ChildProcess | undefined;
  try {
    const baselineFile = join(HERE, target === 'direct' ? 'expected-direct.yml' : 'expected-warden.yml');
    const baseline = readBaseline(baselineFile);
    let url = ctx.upstream.url;
    if (target !== 'direct') {
      const allowed = target === 'warden' ? ALL_TOOLS : RESTRICTIVE_TOOLS;
      const before = new Set(children);
      const gw = await startGateway(dir, ctx.upstream.url, allowed, target === 'warden');
      gateway = [...children].find((c) => !before.has(c));
      shim = await startAuthShim({ target: gw.baseUrl, token: tokenPool(gw) });
      url = shim.url;
    }
    // The restrictive run has its own judgement below; the suite still gets the Warden baseline
    // for its own report, but its exit code is not used for this target.
    const suite = await runSuite({
      url,
      baseline: baselineFile,
      outDir,
      logFile: join(dir, 'suite.log'),
      scenario: ctx.scenario,
    });
    result.suiteExitCode = suite.code;
    result.timedOut = suite.timedOut;
    const checks = readChecks(outDir);
    const rows = judge(checks, baseline, ctx.scenarios);
    if (target === 'restrictive' && shim) {
      const probes = new Map<string, { code?: string; why: string }>();
      for (const row of rows) {
        if (!row.failing || row.status === 'MISSING') continue;
        const cs = checks.get(row.scenario) ?? [];
        const bad = failed(cs);
        const broken = bad.find((c) => BROKEN_RE.test(c.errorMessage ?? ''));
        const tool = SCENARIO_TOOL[row.scenario];
        const denied = tool !== undefined && !RESTRICTIVE_TOOLS.includes(tool);
        if (!denied) {
          // Resources and prompts: no rule permits them here, so each read must be refused with a
          // Warden code in the JSON-RPC error (RESOURCE_NOT_ALLOWED, PROMPT_NOT_ALLOWED).
          const codes = bad.map((c) => DENIAL_RE.exec(c.errorMessage ?? '')?.[1]);
          if (tool === undefined && bad.length > 0 && !broken && codes.every((c) => c !== undefined)) {
            row.status = 'denied';
            row.note = `refused with ${[...new Set(codes)].join(', ')} (JSON-RPC error)`;
          }
          continue; // otherwise it fails for another reason: judged against the Warden baseline as is
        }
        // Failed before the call for a reason of its own (e.g. logging/setLevel unsupported): baseline.
        if (bad.some((c) => /-32601|Method not found/.test(c.errorMessage ?? ''))) continue;
        if (broken) {
          row.status = 'UNEXPECTED FAIL';
          row.note = `not a clean denial: ${firstNote([broken])}`;
          continue;
        }
        const inChecks = denialIn(cs);
        if (inChecks) {
          row.status = 'denied';
          row.note = `checks.json shows ${inChecks}`;
          continue;
        }
        if (
          row.scenario === 'json-schema-2020-12' &&
          bad.every((c) => c.id === 'json-schema-2020-12-tool-found')
        ) {
          row.status = 'denied';
          row.note = `${tool} is not listed to this agent (allowedTools)`;
          continue;
        }
        // checks.json keeps no result for this scenario: ask the gateway the same question directly.
        let probe = probes.get(tool);
        if (!probe) {
          probe = await probeDenial(shim.url, tool);
          probes.set(tool, probe);
        }
        if (probe.code) {
          row.status = 'denied';
          row.note = `${probe.why} (suite: ${firstNote(bad)})`;
        } else {
          row.status = 'UNEXPECTED FAIL';
          row.note = `not a clean denial: ${probe.why}`;
        }
      }
      // A refused tool that "passes" (e.g. tools-call-error: a denial is an isError result too) is fine.
      for (const row of rows)
        if (row.status === 'stale baseline' && SCENARIO_TOOL[row.scenario]) row.status = 'pass';
    }
    result.rows = rows.map(({ failing: _f, ...r }) => r);
    if (suite.timedOut) result.error = `the suite did not finish within ${SUITE_TIMEOUT_MS / 60_000} min`;
    result.ok =
      !suite.timedOut &&
      result.rows.every((r) => r.status === 'pass' || r.status === 'expected fail' || r.status === 'denied');
    if (!result.ok && !result.error && result.rows.length > 0 && checks.size === 0) {
      result.error = `the suite produced no results:\n${tail(join(dir, 'suite.log'))}`;
    }
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
  } finally {
    await shim?.close().catch(() => undefined);
    if (gateway) await stopChild(gateway).catch(() => undefined);
    result.seconds = Math.round((Date.now() - started) / 100) / 10;
  }
  return result;
}

function printTable(r: TargetResult): void {
  const w = Math.max(...r.rows.map((x) => x.scenario.length), 8);
  const sw = 15;
  console.log(`\n## ${r.target} — ${r.ok ? 'OK' : 'FAILED'} in ${r.seconds}s`);
  if (r.error) console.log(`error: ${r.error}`);
  if (r.rows.length > 0) {
    console.log(`${'scenario'.padEnd(w)}  ${'status'.padEnd(sw)}  note`);
    for (const row of r.rows) console.log(`${row.scenario.padEnd(w)}  ${row.status.padEnd(sw)}  ${row.note}`);
  }
  console.log(`results: ${r.outputDir}`);
}

const HELP = `usage: npx tsx test/conformance/run.ts [options]

Runs the MCP conformance suite (${CONFORMANCE_PACKAGE}, on Node 22 via npx) against
the test upstream (test/conformance/upstream.ts) directly and through Warden.

  --target T       direct | warden | restrictive | all (default all)
                     direct       the upstream itself; baseline expected-direct.yml
                     warden       through the gateway, agent allowed every tool; baseline expected-warden.yml
                     restrictive  through the gateway, agent allowed only ${RESTRICTIVE_TOOLS.join(', ')};
                                  every failure must be a clean Warden denial (or in expected-warden.yml)
  --scenario NAME  run one scenario only
  --json           print a JSON summary on stdout instead of tables
  --keep           keep the temp directory (configs, logs, checks.json)
  -h, --help       this help

The gateway targets run the build (dist/): run \`npm run build\` first.
Exit status: 0 when every result is expected, 1 otherwise, 2 on bad usage.`;

function parseArgs(argv: string[]): { targets: Target[]; json: boolean; keep: boolean; scenario?: string } {
  let target = 'all';
  let json = false;
  let keep = false;
  let scenario: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value`);
      return v;
    };
    const eq = a.indexOf('=');
    const [flag, inline] = eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (flag === '--target') target = inline ?? value();
    else if (flag === '--scenario') scenario = inline ?? value();
    else if (a === '--json') json = true;
    else if (a === '--keep') keep = true;
    else if (a === '--help' || a === '-h') {
      console.log(HELP);
      process.exit(0);
    } else throw new Error(`unknown argument ${JSON.stringify(a)}`);
  }
  const all: Target[] = ['direct', 'warden', 'restrictive'];
  const targets = target === 'all' ? all : all.filter((t) => t === target);
  if (targets.length === 0)
    throw new Error(`--target: expected direct, warden, restrictive or all, got ${JSON.stringify(target)}`);
  if (scenario !== undefined && !(SCENARIOS as readonly string[]).includes(scenario)) {
    throw new Error(
      `--scenario: unknown scenario ${JSON.stringify(scenario)}; one of:\n  ${SCENARIOS.join('\n  ')}`,
    );
  }
  return { targets, json, keep, ...(scenario ? { scenario } : {}) };
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`run.ts: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const work = mkdtempSync(join(tmpdir(), 'warden-conformance-'));
  if (!args.keep) cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const upstream = await startConformanceUpstream();
  cleanups.push(() => upstream.close());
  const ctx: RunContext = {
    upstream,
    work,
    scenarios: args.scenario ? [args.scenario] : SCENARIOS,
    ...(args.scenario ? { scenario: args.scenario } : {}),
  };
  if (!args.json) console.log(`upstream ${upstream.url}; work dir ${work}${args.keep ? ' (kept)' : ''}`);
  const results: TargetResult[] = [];
  for (const target of args.targets) {
    if (!args.json) console.log(`\n… ${target}`);
    const r = await runTarget(target, ctx);
    results.push(r);
    if (!args.json) printTable(r);
  }
  const ok = results.every((r) => r.ok);
  if (args.json) {
    console.log(JSON.stringify({ package: CONFORMANCE_PACKAGE, ok, targets: results }, null, 2));
  } else {
    console.log(
      `\n${results.map((r) => `${r.target}: ${r.ok ? 'ok' : 'FAILED'} (${r.seconds}s)`).join(', ')}`,
    );
    if (!ok) console.log('Unexpected results above (UNEXPECTED FAIL, stale baseline, MISSING or an error).');
  }
  return ok ? 0 : 1;
}

main().then(
  async (code) => {
    await cleanupAll();
    process.exit(code);
  },
  async (e: unknown) => {
    console.error(`run.ts: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    await cleanupAll();
    process.exit(1);
  },
);
