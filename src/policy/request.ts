/**
 * One Cedar request per call, built from per-request entities only: the agent
 * (with its type as parent), the tool, and the user when there is one. Never a
 * whole-world entity list, so the cost of a decision does not grow with the
 * number of agents. Each entity costs roughly 15–20 µs of JSON parsing inside
 * the wasm module, which is why the AgentType group is named as a parent but
 * not sent as an entity of its own (Cedar does not need it to evaluate `in`).
 */
import { isIP } from 'node:net';
import type {
  CedarValueJson,
  EntityJson,
  EntityUidJson,
  StatefulAuthorizationCall,
} from '@cedar-policy/cedar-wasm/nodejs';
import type { PolicyArgumentType } from '../config/policy-types.js';
import { cedarArguments } from './arguments.js';
import type { RecipientFacts } from './recipients.js';
import { CEDAR } from './schema.js';

/** Everything a decision may depend on. */
export interface AuthzInput {
  agent: {
    id: string;
    type: string;
    version: string;
    environment: string;
    owner: string;
    allowedTools: readonly string[];
    deniedTools: readonly string[];
  };
  /** The user the agent acts for (delegation, a later issue); absent today. */
  user?: { id: string; tier?: string };
  tool: { name: string; upstream: string };
  /** The call's arguments (already validated as a JSON object). */
  arguments: Readonly<Record<string, unknown>>;
  session: { id: string; calls: number };
  clientIp: string;
  /** The detectors' findings on the arguments (scores 0–100, counts); absent members did not run. */
  detectors?: { injection?: number; classifier?: number; secrets?: number; pii?: number };
  /** What the session has taken in so far (issue #7). */
  taint?: { untrusted: boolean; privateData: boolean };
  /** Epoch milliseconds of the decision. */
  now: number;
}

/** An MCP resource read or prompt get (issue #10). */
export interface AccessInput {
  agent: AuthzInput['agent'];
  user?: AuthzInput['user'];
  kind: 'resource' | 'prompt';
  /** resource: its URI; prompt: its public name. */
  name: string;
  upstream: string;
  session: { id: string; calls: number };
  clientIp: string;
  taint?: AuthzInput['taint'];
  now: number;
}

/** What the request builder needs from the tool configuration. */
export interface ToolFacts {
  risk: string;
  tags: readonly string[];
  /** Absent = none. */
  capabilities?: readonly string[];
  /** Who the call sends to, for tools that declare `recipients`; absent for the others. */
  recipients?: RecipientFacts;
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;

/** Local wall-clock time in one zone, computed at most once per minute (zones shift by whole minutes). */
export class LocalTime {
  private readonly format: Intl.DateTimeFormat;
  private cachedMinute = Number.NaN;
  private cached: Record<string, CedarValueJson> = {};

  constructor(readonly zone: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
    });
  }

  /** `{hour, minute, weekday, date, zone}` for epoch ms `now`. */
  at(now: number): Record<string, CedarValueJson> {
    const minute = Math.floor(now / 60_000);
    if (minute === this.cachedMinute) return this.cached;
    const parts: Record<string, string> = {};
    for (const p of this.format.formatToParts(new Date(now))) parts[p.type] = p.value;
    const weekday = WEEKDAYS.find((d) => d === parts['weekday']) ?? 'Sun';
    this.cached = {
      hour: Number(parts['hour']),
      minute: Number(parts['minute']),
      weekday,
      date: `${parts['year']}-${parts['month']}-${parts['day']}`,
      zone: this.zone,
    };
    this.cachedMinute = minute;
    return this.cached;
  }
}

/** The address as Cedar's `ip()` accepts it, or undefined when it is not an IP address. */
export function cedarIp(raw: string): string | undefined {
  // Cedar refuses IPv4-mapped IPv6 (::ffff:a.b.c.d), which dual-stack sockets report for IPv4 peers.
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(raw);
  const ip = mapped?.[1] ?? raw;
  return isIP(ip) === 0 ? undefined : ip;
}

/** Everything is read: for requests checked against the schema (tests) rather than decided. */
const READ_ALL = { names: { has: () => true }, wholeContext: true } as const;

/**
 * The Cedar request for `input` (everything but the policy set id). Attributes
 * no policy in the set reads are left out (`reads`): Cedar parses every value it
 * is sent, and a default set reads three. Leaving one out cannot change a
 * decision — a policy could only notice by reading it, and then it is sent —
 * and a mistake here would make a policy error, which denies (fail closed).
 */
export function buildRequest(
  input: AuthzInput,
  tool: ToolFacts,
  argumentTypes: ReadonlyMap<string, PolicyArgumentType>,
  time: LocalTime,
  toolsUsed: readonly string[],
  reads: { names: { has(name: string): boolean }; wholeContext: boolean } = READ_ALL,
): Omit<StatefulAuthorizationCall, 'preparsedPolicySetId'> {
  const read = (name: string) => reads.names.has(name);
  const inContext = (name: string) => reads.wholeContext || read(name);
  const resource = { type: CEDAR.tool, id: input.tool.name };
  const toolAttrs: Record<string, CedarValueJson> = {};
  if (read('name')) toolAttrs['name'] = input.tool.name;
  if (read('risk')) toolAttrs['risk'] = tool.risk;
  if (read('upstream')) toolAttrs['upstream'] = input.tool.upstream;
  if (read('tags')) toolAttrs['tags'] = [...tool.tags];
  if (read('capabilities')) toolAttrs['capabilities'] = [...(tool.capabilities ?? [])];
  const { principal, entities, context } = head(input, time, toolsUsed, reads);
  entities.push({ uid: resource, attrs: toolAttrs, parents: [] });
  if (inContext('arguments')) context['arguments'] = cedarArguments(input.arguments, argumentTypes);
  if (input.detectors && inContext('detectors')) {
    const d: Record<string, CedarValueJson> = {};
    for (const [k, v] of Object.entries(input.detectors)) if (v !== undefined) d[k] = v;
    context['detectors'] = d;
  }
  if (tool.recipients && inContext('recipients')) context['recipients'] = { ...tool.recipients };
  tail(input, entities, context, reads);
  return {
    principal,
    action: { type: CEDAR.action, id: CEDAR.call },
    resource,
    context,
    entities,
  };
}

/**
 * The Cedar request for a resource read (`read_resource` on `Warden::Resource::"<uri>"`)
 * or a prompt get (`get_prompt` on `Warden::Prompt::"<name>"`); the same context as a
 * call's without arguments and detectors, and the same rule about what is left out.
 */
export function buildAccessRequest(
  input: AccessInput,
  time: LocalTime,
  toolsUsed: readonly string[],
  reads: Reads = READ_ALL,
): Omit<StatefulAuthorizationCall, 'preparsedPolicySetId'> {
  const read = (name: string) => reads.names.has(name);
  const { principal, entities, context } = head(input, time, toolsUsed, reads);
  const isResource = input.kind === 'resource';
  const resource = { type: isResource ? CEDAR.resource : CEDAR.prompt, id: input.name };
  const attrs: Record<string, CedarValueJson> = {};
  const key = isResource ? 'uri' : 'name';
  if (read(key)) attrs[key] = input.name;
  if (read('upstream')) attrs['upstream'] = input.upstream;
  entities.push({ uid: resource, attrs, parents: [] });
  tail(input, entities, context, reads);
  return {
    principal,
    action: { type: CEDAR.action, id: isResource ? CEDAR.readResource : CEDAR.getPrompt },
    resource,
    context,
    entities,
  };
}

type Reads = { names: { has(name: string): boolean }; wholeContext: boolean };
type Shared = Pick<AuthzInput, 'agent' | 'user' | 'session' | 'clientIp' | 'taint' | 'now'>;

/** The principal entity, and the start of the context every action shares (time, session). */
function head(
  input: Shared,
  time: LocalTime,
  toolsUsed: readonly string[],
  reads: Reads,
): { principal: EntityUidJson; entities: EntityJson[]; context: Record<string, CedarValueJson> } {
  const { agent } = input;
  const read = (name: string) => reads.names.has(name);
  const inContext = (name: string) => reads.wholeContext || read(name);
  const principal = { type: CEDAR.agent, id: agent.id };
  const agentAttrs: Record<string, CedarValueJson> = {};
  if (read('type')) agentAttrs['type'] = agent.type;
  if (read('version')) agentAttrs['version'] = agent.version;
  if (read('environment')) agentAttrs['environment'] = agent.environment;
  if (read('owner')) agentAttrs['owner'] = agent.owner;
  if (read('allowedTools')) agentAttrs['allowedTools'] = [...agent.allowedTools];
  if (read('deniedTools')) agentAttrs['deniedTools'] = [...agent.deniedTools];
  const entities: EntityJson[] = [
    { uid: principal, attrs: agentAttrs, parents: [{ type: CEDAR.agentType, id: agent.type }] },
  ];
  const context: Record<string, CedarValueJson> = {};
  if (inContext('time')) context['time'] = time.at(input.now);
  if (inContext('session')) context['session'] = { calls: input.session.calls, toolsUsed: [...toolsUsed] };
  return { principal, entities, context };
}

/** The rest of the shared context (taint, client address, user), and the user entity when there is one. */
function tail(
  input: Shared,
  entities: EntityJson[],
  context: Record<string, CedarValueJson>,
  reads: Reads,
): void {
  const read = (name: string) => reads.names.has(name);
  const inContext = (name: string) => reads.wholeContext || read(name);
  if (input.taint && inContext('taint')) context['taint'] = { ...input.taint };
  const ip = inContext('clientIp') ? cedarIp(input.clientIp) : undefined;
  if (ip !== undefined) context['clientIp'] = { __extn: { fn: 'ip', arg: ip } };
  if (input.user && inContext('user')) {
    const user = { type: CEDAR.user, id: input.user.id };
    entities.push({
      uid: user,
      attrs: input.user.tier === undefined || !read('tier') ? {} : { tier: input.user.tier },
      parents: [],
    });
    context['user'] = { __entity: user };
  }
}
