/**
 * The `taint:` section as policies (issue #7). Once a session has taken in
 * untrusted content (or read private data), calls to tools that communicate
 * externally need a human (`approval`) or are refused (`deny`). Written as
 * ordinary rules so that decisions name them, `warden policy test` exercises
 * them, and an operator's own Cedar can refine them.
 */
import type { PolicyRuleConfig } from '../config/policy-types.js';
import type { TaintConfig } from '../config/schema-inspection.js';

/** The `taint:` section as the policy side reads it (the recipient list may be left out). */
export type TaintSettings = Pick<TaintConfig, 'untrusted' | 'privateData'> & {
  trustedRecipients?: readonly string[];
};

/** The ids of the generated taint policies (reserved: no rule may take them). */
export const TAINT_POLICY_IDS = { untrusted: 'taint.untrusted', privateData: 'taint.privateData' } as const;

const WHY = {
  untrusted: 'the session has taken in untrusted content',
  privateData: 'the session has read private data',
} as const;

/** The id of the generated policy about secrets sent to tools that communicate externally. */
export const SECRETS_OUT_POLICY_ID = 'detectors.secretsToExternal';

/** `inspection.arguments.secretsToExternal` as a rule; none when `allow` or when secrets are not counted. */
export function secretsOutRule(
  args: { secrets: boolean; secretsToExternal: 'deny' | 'approval' | 'allow' } | undefined,
): PolicyRuleConfig[] {
  if (!args?.secrets || args.secretsToExternal === 'allow') return [];
  const base = {
    id: SECRETS_OUT_POLICY_ID,
    toolCapabilities: ['external-communication' as const],
    when: { detectors: { secrets: { gt: 0 } } },
  };
  return [
    args.secretsToExternal === 'deny'
      ? {
          ...base,
          effect: 'forbid',
          description: 'A secret in the arguments of a tool that communicates externally is refused',
        }
      : {
          ...base,
          effect: 'obligation',
          description: 'A secret in the arguments of a tool that communicates externally needs a human',
          obligations: { approval: 'required' },
        },
  ];
}

/** The rules `taint` stands for; none when both kinds are `allow`. */
export function taintRules(taint: TaintSettings | undefined): PolicyRuleConfig[] {
  if (!taint) return [];
  const rules: PolicyRuleConfig[] = [];
  for (const kind of ['untrusted', 'privateData'] as const) {
    const action = taint[kind];
    if (action === 'allow') continue;
    // Untrusted content may not steer a message anywhere but to trusted recipients; private
    // data may not leave at all, trusted recipients included.
    const exempt = kind === 'untrusted' && (taint.trustedRecipients?.length ?? 0) > 0;
    const unless = exempt ? ' unless every recipient is trusted' : '';
    const base = {
      id: TAINT_POLICY_IDS[kind],
      toolCapabilities: ['external-communication' as const],
      when: { taint: { [kind]: true }, ...(exempt ? { recipients: { trusted: false } } : {}) },
    };
    rules.push(
      action === 'deny'
        ? {
            ...base,
            effect: 'forbid',
            description: `Tools that communicate externally are refused${unless}: ${WHY[kind]} (taint.${kind}: deny)`,
          }
        : {
            ...base,
            effect: 'obligation',
            description: `Tools that communicate externally need a human${unless}: ${WHY[kind]} (taint.${kind}: approval)`,
            obligations: { approval: 'required' },
          },
    );
  }
  return rules;
}
