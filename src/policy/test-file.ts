/**
 * Policy test files (`warden policy test`), in the spirit of `opa test`: a YAML
 * list of calls, each with the decision it must get. Every case is decided by
 * the same engine `warden start` builds from the config (without upstreams:
 * the tools are the ones `tools:` declares), so a case proves what the gateway
 * would decide for that call.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { capabilitySchema } from '../config/schema-inspection.js';
import type { RiskClass, ToolConfig, WardenConfig } from '../config/types.js';
import { isWardenError, WardenError } from '../errors.js';
import { AGENT_DENY_POLICY } from './compile.js';
import { type AuthzDecision, PolicyEngine, type PolicyLogger } from './engine.js';
import { effectiveRisk } from './obligations.js';
import type { AccessInput, AuthzInput } from './request.js';

const risk = z.enum(['low', 'medium', 'high', 'critical']);

const caseSchema = z
  .strictObject({
    name: z.string().min(1),
    agent: z.strictObject({
      id: z.string().min(1),
      /** Required unless the config declares an agent with this id (its fields are the defaults). */
      type: z.string().min(1).optional(),
      version: z.string().optional(),
      environment: z.string().optional(),
      owner: z.string().optional(),
      allowedTools: z.array(z.string()).optional(),
      deniedTools: z.array(z.string()).optional(),
    }),
    tool: z
      .strictObject({
        name: z.string().min(1),
        /** Overrides `tools.<name>.risk` for this case. */
        risk: risk.optional(),
        /** Overrides `tools.<name>.tags` for this case. */
        tags: z.array(z.string()).optional(),
        /** Overrides `tools.<name>.capabilities` for this case. */
        capabilities: z.array(capabilitySchema).optional(),
        upstream: z.string().optional(),
      })
      .optional(),
    /** An MCP resource read (issue #10) instead of a tool call: the resource's URI. */
    resource: z.string().min(1).optional(),
    /** An MCP prompt get (issue #10) instead of a tool call: the prompt's public name. */
    prompt: z.string().min(1).optional(),
    /** The upstream of the resource or prompt (default `test`). */
    upstream: z.string().min(1).optional(),
    arguments: z.record(z.string(), z.unknown()).optional(),
    user: z.strictObject({ id: z.string().min(1), tier: z.string().optional() }).optional(),
    /** When the call is made; default: now. */
    time: z.iso.datetime({ offset: true }).optional(),
    clientIp: z.string().optional(),
    session: z
      .strictObject({
        id: z.string().optional(),
        calls: z.number().int().min(0).optional(),
        /** The session's taint (what the gateway's taint step would have recorded). */
        taint: z
          .strictObject({ untrusted: z.boolean().optional(), privateData: z.boolean().optional() })
          .optional(),
      })
      .optional(),
    /** The detectors' findings on the arguments: scores 0–100 (injection, classifier), counts (secrets, pii). */
    detectors: z
      .strictObject({
        injection: z.number().int().min(0).max(100).optional(),
        classifier: z.number().int().min(0).max(100).optional(),
        secrets: z.number().int().min(0).optional(),
        pii: z.number().int().min(0).optional(),
      })
      .optional(),
    expect: z.strictObject({
      decision: z.enum(['allow', 'deny']),
      /** The error code a denial gets at the gateway: TOOL_DENIED, TOOL_NOT_ALLOWED, POLICY_DENIED, INVALID_ARGUMENTS… */
      code: z.string().min(1).optional(),
      /** Ids that must be among the determining policies. */
      policies: z.array(z.string()).optional(),
      obligations: z
        .strictObject({
          /** `required` (or true): the call needs an approval; false: it must not. */
          approval: z.union([z.string(), z.boolean()]).optional(),
          /** The call's effective risk class (the tool's, raised by the policies' @risk / approval). */
          risk: risk.optional(),
        })
        .optional(),
    }),
  })
  .superRefine((c, ctx) => {
    const named = [
      c.tool && 'tool',
      c.resource !== undefined && 'resource',
      c.prompt !== undefined && 'prompt',
    ];
    const given = named.filter((n): n is string => typeof n === 'string');
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: given.length === 0 ? [] : [given[1]!],
        message: 'expected exactly one of tool, resource and prompt',
      });
      return;
    }
    if (c.tool === undefined) {
      if (c.arguments !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['arguments'], message: `a ${given[0]} case has no arguments` });
      }
      if (c.detectors !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['detectors'], message: `a ${given[0]} case has no detectors` });
      }
    } else if (c.upstream !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['upstream'], message: 'a tool case gives tool.upstream' });
    }
  });

const fileSchema = z.array(caseSchema);

/** One case of a policy test file. */
export type PolicyTestCase = z.infer<typeof caseSchema>;

/** What one case got. */
export interface PolicyTestResult {
  file: string;
  index: number;
  name: string;
  ok: boolean;
  /** What differed from `expect` (empty when ok). */
  problems: string[];
  actual: {
    decision: 'allow' | 'deny';
    code?: string;
    policies: string[];
    obligations?: Record<string, string>;
    risk?: RiskClass;
    errors?: string[];
  };
}

/** Parse and check a test file's text; throws CONFIG_INVALID naming each bad case by index and name. */
export function parsePolicyTests(text: string, file: string): PolicyTestCase[] {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new WardenError('CONFIG_INVALID', `${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const parsed = fileSchema.safeParse(raw ?? []);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => {
    const [index, ...rest] = i.path;
    if (typeof index !== 'number') return `${file}: ${i.message} (expected a list of cases)`;
    const name = (raw as Array<{ name?: unknown }>)[index]?.name;
    const label = typeof name === 'string' ? ` (${name})` : '';
    return `${file}: case ${index}${label}: ${rest.join('.') || '(case)'}: ${i.message}`;
  });
  throw new WardenError('CONFIG_INVALID', lines.join('\n'));
}

/** Read and parse a test file. */
export async function readPolicyTests(file: string): Promise<PolicyTestCase[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new WardenError('CONFIG_INVALID', `${file}: cannot read the test file (${code ?? 'read error'})`);
  }
  return parsePolicyTests(text, file);
}

/**
 * The engine `warden start` would build from `config`, without upstreams: the
 * known tools are those `tools:` declares (complete only when no upstream could
 * add more). Throws CONFIG_INVALID (with `data.errors`) when the set is invalid.
 */
export function engineForConfig(
  config: WardenConfig,
  tools: Readonly<Record<string, ToolConfig>> = config.tools,
  logger?: PolicyLogger,
): Promise<PolicyEngine> {
  return PolicyEngine.create({
    policy: { ...config.policy, watch: false },
    tools,
    taint: config.taint,
    inspectArguments: config.inspection.arguments,
    knownTools: () => ({ names: new Set(Object.keys(tools)), complete: config.upstreams.length === 0 }),
    ...(logger ? { logger } : {}),
  });
}

/** The code the gateway answers a denial with (see pipeline/authorize.ts). */
function denialCode(d: AuthzDecision & { allowed: false }): string {
  if (d.reason === 'not-permitted') return 'TOOL_NOT_ALLOWED';
  if (d.policyIds.includes(AGENT_DENY_POLICY)) return 'TOOL_DENIED';
  return 'POLICY_DENIED';
}

function decide(
  engine: PolicyEngine,
  config: WardenConfig,
  tools: Readonly<Record<string, ToolConfig>>,
  c: PolicyTestCase,
  index: number,
): PolicyTestResult['actual'] {
  const known = config.agents.find((a) => a.id === c.agent.id);
  const type = c.agent.type ?? known?.type;
  if (type === undefined) {
    throw new WardenError('CONFIG_INVALID', `agent.type is required: no agent "${c.agent.id}" in the config`);
  }
  const shared = {
    agent: {
      id: c.agent.id,
      type,
      version: c.agent.version ?? known?.version ?? '0.0.0',
      environment: c.agent.environment ?? known?.environment ?? 'test',
      owner: c.agent.owner ?? known?.owner ?? 'test',
      allowedTools: c.agent.allowedTools ?? known?.allowedTools ?? [],
      deniedTools: c.agent.deniedTools ?? known?.deniedTools ?? [],
    },
    // A session of its own per case: `context.session.toolsUsed` does not leak between cases.
    session: { id: c.session?.id ?? `policy-test-${index}`, calls: c.session?.calls ?? 0 },
    clientIp: c.clientIp ?? '127.0.0.1',
    now: c.time === undefined ? Date.now() : Date.parse(c.time),
    ...(c.user ? { user: c.user } : {}),
    taint: {
      untrusted: c.session?.taint?.untrusted ?? false,
      privateData: c.session?.taint?.privateData ?? false,
    },
  };
  if (c.tool === undefined) return decideAccess(engine, c, shared);
  const input: AuthzInput = {
    ...shared,
    tool: { name: c.tool.name, upstream: c.tool.upstream ?? 'test' },
    arguments: c.arguments ?? {},
    ...(c.detectors ? { detectors: c.detectors } : {}),
  };
  let d: AuthzDecision;
  try {
    d = engine.authorize(input);
  } catch (e) {
    // A declared argument of the wrong type is refused before any policy runs.
    if (isWardenError(e, 'INVALID_ARGUMENTS')) {
      return { decision: 'deny', code: 'INVALID_ARGUMENTS', policies: [], errors: [(e as Error).message] };
    }
    throw e;
  }
  const errors = d.errors.length > 0 ? { errors: d.errors } : {};
  if (!d.allowed) return { decision: 'deny', code: denialCode(d), policies: d.policyIds, ...errors };
  const configured = (Object.hasOwn(tools, c.tool.name) ? tools[c.tool.name]?.risk : undefined) ?? 'low';
  return {
    decision: 'allow',
    policies: d.policyIds,
    obligations: { ...d.obligations },
    risk: effectiveRisk(configured, d.obligations),
    ...errors,
  };
}

/** A resource or prompt case, decided as the gateway's access step would. */
function decideAccess(
  engine: PolicyEngine,
  c: PolicyTestCase,
  shared: Omit<AccessInput, 'kind' | 'name' | 'upstream'>,
): PolicyTestResult['actual'] {
  const kind = c.resource !== undefined ? 'resource' : 'prompt';
  const d = engine.authorizeAccess({
    ...shared,
    kind,
    name: c.resource ?? c.prompt ?? '',
    upstream: c.upstream ?? 'test',
  });
  const errors = d.errors.length > 0 ? { errors: d.errors } : {};
  if (!d.allowed) {
    const code =
      d.reason === 'not-permitted'
        ? kind === 'resource'
          ? 'RESOURCE_NOT_ALLOWED'
          : 'PROMPT_NOT_ALLOWED'
        : 'POLICY_DENIED';
    return { decision: 'deny', code, policies: d.policyIds, ...errors };
  }
  // No risk: approvals and risk classes are about tool calls.
  return { decision: 'allow', policies: d.policyIds, obligations: { ...d.obligations }, ...errors };
}

function compare(c: PolicyTestCase, got: PolicyTestResult['actual']): string[] {
  const e = c.expect;
  const problems: string[] = [];
  if (got.decision !== e.decision) {
    const why =
      got.decision === 'deny'
        ? ` (${got.code}${got.policies.length ? `: ${got.policies.join(', ')}` : ''})`
        : '';
    problems.push(`decision: expected ${e.decision}, got ${got.decision}${why}`);
  }
  if (e.code !== undefined && got.code !== e.code) {
    problems.push(`code: expected ${e.code}, got ${got.code ?? 'none (allowed)'}`);
  }
  const missing = (e.policies ?? []).filter((p) => !got.policies.includes(p));
  if (missing.length > 0) {
    problems.push(
      `policies: expected ${missing.join(', ')} among the determining ones, got [${got.policies.join(', ')}]`,
    );
  }
  const o = e.obligations;
  if (o?.approval !== undefined) {
    const want = o.approval === true ? 'required' : o.approval === false ? undefined : o.approval;
    const have = got.obligations?.['approval'];
    if (want !== have) problems.push(`approval: expected ${want ?? 'none'}, got ${have ?? 'none'}`);
  }
  if (o?.risk !== undefined && got.risk !== o.risk) {
    problems.push(`risk: expected ${o.risk}, got ${got.risk ?? 'none (denied)'}`);
  }
  return problems;
}

/**
 * Run `cases` against the engine built from `config`. A case that overrides a
 * tool's risk or tags gets an engine whose `tools:` says so (one per distinct
 * override). Never throws for a failing case; throws when the policy set is invalid.
 */
export async function runPolicyTests(
  config: WardenConfig,
  suites: ReadonlyArray<{ file: string; cases: readonly PolicyTestCase[] }>,
): Promise<PolicyTestResult[]> {
  const engines = new Map<string, { engine: PolicyEngine; tools: Record<string, ToolConfig> }>();
  const engineFor = async (c: PolicyTestCase) => {
    const override =
      c.tool === undefined ||
      (c.tool.risk === undefined && c.tool.tags === undefined && c.tool.capabilities === undefined)
        ? ''
        : JSON.stringify([
            c.tool.name,
            c.tool.risk ?? null,
            c.tool.tags ?? null,
            c.tool.capabilities ?? null,
          ]);
    const hit = engines.get(override);
    if (hit) return hit;
    const tools: Record<string, ToolConfig> = { ...config.tools };
    if (override !== '' && c.tool) {
      const base = Object.hasOwn(config.tools, c.tool.name) ? config.tools[c.tool.name] : undefined;
      tools[c.tool.name] = {
        ...(base ?? ({ risk: 'low', tags: [] } as unknown as ToolConfig)),
        ...(c.tool.risk ? { risk: c.tool.risk } : {}),
        ...(c.tool.tags ? { tags: c.tool.tags } : {}),
        ...(c.tool.capabilities ? { capabilities: c.tool.capabilities } : {}),
      };
    }
    const made = { engine: await engineForConfig(config, tools), tools };
    engines.set(override, made);
    return made;
  };
  const results: PolicyTestResult[] = [];
  try {
    for (const { file, cases } of suites) {
      for (const [index, c] of cases.entries()) {
        const { engine, tools } = await engineFor(c);
        let actual: PolicyTestResult['actual'];
        try {
          actual = decide(engine, config, tools, c, index);
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          results.push({
            file,
            index,
            name: c.name,
            ok: false,
            problems: [`error: ${message}`],
            actual: { decision: 'deny', code: isWardenError(e) ? e.code : 'INTERNAL', policies: [] },
          });
          continue;
        }
        const problems = compare(c, actual);
        results.push({ file, index, name: c.name, ok: problems.length === 0, problems, actual });
      }
    }
  } finally {
    for (const { engine } of engines.values()) engine.close();
  }
  return results;
}

/** Read `files` and run them against `config`'s policies. */
export async function runPolicyTestFiles(
  config: WardenConfig,
  files: readonly string[],
): Promise<PolicyTestResult[]> {
  const suites = [];
  for (const file of files) suites.push({ file, cases: await readPolicyTests(file) });
  return runPolicyTests(config, suites);
}

/** One problem of an invalid set, split into file, line and message when it says where. */
export interface PolicyProblem {
  file?: string;
  line?: number;
  column?: number;
  message: string;
}

/** Split `file:line:col: message` (the engine's and the config loader's format). */
export function toProblem(text: string): PolicyProblem {
  const m = /^(.+?):(\d+):(\d+): ([\s\S]*)$/.exec(text);
  if (m) return { file: m[1]!, line: Number(m[2]), column: Number(m[3]), message: m[4]! };
  const r = /^(policy\.rules\[\d+\](?: \([^)]*\))?): ([\s\S]*)$/.exec(text);
  if (r) return { file: r[1]!, message: r[2]! };
  return { message: text };
}

/** What `warden policy validate` reports. */
export type ValidateResult =
  | { ok: true; policyCount: number; digest: string; warnings: string[] }
  | { ok: false; problems: PolicyProblem[]; warnings: string[] };

/** Build the policy set from `config` as the gateway would; never throws for an invalid set. */
export async function validatePolicies(config: WardenConfig): Promise<ValidateResult> {
  const warnings: string[] = [];
  let engine: PolicyEngine;
  try {
    engine = await engineForConfig(config, config.tools, {
      info() {},
      error() {},
      warn: (_o, msg) => void warnings.push(msg.replace(/^policy: /, '')),
    });
  } catch (e) {
    if (isWardenError(e, 'CONFIG_INVALID')) {
      const errors = Array.isArray(e.data?.['errors'])
        ? (e.data['errors'] as string[])
        : e.message.split('\n');
      return { ok: false, problems: errors.map(toProblem), warnings };
    }
    throw e;
  }
  const { policyCount, digest } = engine.current;
  engine.close();
  return { ok: true, policyCount, digest, warnings };
}
