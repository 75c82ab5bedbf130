/**
 * The Cedar schema every policy is validated against (namespace `Warden`).
 * Built as JSON rather than schema text so that argument names from config
 * can never break its syntax. `context.arguments` is the one part that varies:
 * Cedar's validator has no open records, so each argument a policy may read is
 * declared with one type (see {@link collectArgumentTypes}).
 */
import type { SchemaJson, TypeOfAttribute } from '@cedar-policy/cedar-wasm/nodejs';
import type { PolicyArgumentType } from '../config/policy-types.js';

type Attr = TypeOfAttribute<string>;

const str: Attr = { type: 'String' };
const long: Attr = { type: 'Long' };
const bool: Attr = { type: 'Boolean' };
const strings: Attr = { type: 'Set', element: { type: 'String' } };
const optional = (t: Attr): Attr => ({ ...t, required: false });

/** The Cedar type of each argument type a policy can compare. */
const ARGUMENT_CEDAR: Record<PolicyArgumentType, Attr> = { string: str, integer: long, boolean: bool };

/** The fixed names: entity types, the actions. */
export const CEDAR = {
  agent: 'Warden::Agent',
  agentType: 'Warden::AgentType',
  user: 'Warden::User',
  tool: 'Warden::Tool',
  /** An MCP resource, by URI (issue #10). */
  resource: 'Warden::Resource',
  /** An MCP prompt, by public name (issue #10). */
  prompt: 'Warden::Prompt',
  action: 'Warden::Action',
  call: 'call',
  readResource: 'read_resource',
  getPrompt: 'get_prompt',
} as const;

/** The actions the schema declares. */
export type CedarAction = typeof CEDAR.call | typeof CEDAR.readResource | typeof CEDAR.getPrompt;
export const ACTIONS: readonly CedarAction[] = [CEDAR.call, CEDAR.readResource, CEDAR.getPrompt];

/**
 * The schema as it was before resources and prompts (only `call`): a file policy
 * that does not name its action and validates only against this one reads what
 * only tool calls have, and is taken to be about tool calls (see policy-set.ts).
 */
export function callOnlySchema(schema: SchemaJson<string>): SchemaJson<string> {
  const ns = schema['Warden']!;
  const { Resource: _r, Prompt: _p, ...entityTypes } = ns.entityTypes;
  return { Warden: { ...ns, entityTypes, actions: { call: ns.actions['call']! } } };
}

/** The schema for a policy set whose `context.arguments` declares `argumentTypes`. */
export function buildSchema(argumentTypes: ReadonlyMap<string, PolicyArgumentType>): SchemaJson<string> {
  const args: Record<string, Attr> = {};
  for (const [name, type] of [...argumentTypes].sort(([a], [b]) => (a < b ? -1 : 1))) {
    args[name] = optional(ARGUMENT_CEDAR[type]);
  }
  const accessContext: Attr = {
    type: 'Record',
    attributes: {
      time: { type: 'Time' },
      session: { type: 'SessionStats' },
      clientIp: optional({ type: 'Extension', name: 'ipaddr' }),
      user: optional({ type: 'Entity', name: 'User' }),
      taint: optional({ type: 'Taint' }),
    },
  };
  return {
    Warden: {
      commonTypes: {
        Time: {
          type: 'Record',
          attributes: { hour: long, minute: long, weekday: str, date: str, zone: str },
        },
        SessionStats: { type: 'Record', attributes: { calls: long, toolsUsed: strings } },
        Arguments: { type: 'Record', attributes: args },
        // The detectors' findings on the arguments (issue #7): scores 0–100 and counts; absent = not run.
        Detectors: {
          type: 'Record',
          attributes: {
            injection: optional(long),
            classifier: optional(long),
            pii: optional(long),
            secrets: optional(long),
          },
        },
        Taint: { type: 'Record', attributes: { untrusted: optional(bool), privateData: optional(bool) } },
        // Who a call sends to, for tools that declare `recipients`: how many, and whether all are trusted.
        Recipients: { type: 'Record', attributes: { count: long, trusted: bool } },
      },
      entityTypes: {
        AgentType: {},
        Agent: {
          memberOfTypes: ['AgentType'],
          shape: {
            type: 'Record',
            attributes: {
              type: str,
              version: str,
              environment: str,
              owner: str,
              allowedTools: strings,
              deniedTools: strings,
            },
          },
        },
        User: { shape: { type: 'Record', attributes: { tier: optional(str) } } },
        Tool: {
          shape: {
            type: 'Record',
            attributes: { name: str, risk: str, upstream: str, tags: strings, capabilities: strings },
          },
        },
        Resource: { shape: { type: 'Record', attributes: { uri: str, upstream: str } } },
        Prompt: { shape: { type: 'Record', attributes: { name: str, upstream: str } } },
      },
      actions: {
        call: {
          appliesTo: {
            principalTypes: ['Agent'],
            resourceTypes: ['Tool'],
            context: {
              type: 'Record',
              attributes: {
                time: { type: 'Time' },
                session: { type: 'SessionStats' },
                arguments: { type: 'Arguments' },
                clientIp: optional({ type: 'Extension', name: 'ipaddr' }),
                user: optional({ type: 'Entity', name: 'User' }),
                detectors: optional({ type: 'Detectors' }),
                taint: optional({ type: 'Taint' }),
                recipients: optional({ type: 'Recipients' }),
              },
            },
          },
        },
        // MCP resources and prompts (issue #10): the context of a call without what is about arguments.
        read_resource: {
          appliesTo: { principalTypes: ['Agent'], resourceTypes: ['Resource'], context: accessContext },
        },
        get_prompt: {
          appliesTo: { principalTypes: ['Agent'], resourceTypes: ['Prompt'], context: accessContext },
        },
      },
    },
  };
}
