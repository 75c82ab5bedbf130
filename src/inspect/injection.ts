/**
 * Prompt-injection detection (issue #7) for agent inputs, tool arguments and tool results: scored
 * heuristics, not a verdict. Each rule is a regex over normalized text (look-alikes folded, invisible
 * characters removed) with bounded quantifiers only, so a scan is linear in the input; every hit is a
 * signal with a weight, and weights combine as 1 − Π(1 − wᵢ) so independent weak hints add up while
 * no number of them exceeds 1. The score feeds policy context; policy decides.
 *
 * What this cannot do: a paraphrase that avoids every phrase here scores 0. The corpus shows it
 * (PurpleLlama's "indirect reference" and "overload" rows are plain questions whose harm lies in what
 * the system prompt protects); authorization is the wall, this is a smoke detector.
 */
import { decodeRuns } from './decode-runs.js';
import { type Normalized, normalize, toOriginal } from './normalize.js';
import { findRepeatedToken } from './runs.js';

/** One heuristic hit; `start`/`end` are UTF-16 offsets into the ORIGINAL text. */
export interface InjectionSignal {
  rule: string;
  start: number;
  end: number;
  weight: number;
}

/** The combined score in [0, 1] and the signals behind it (at most one per rule, the first hit). */
export interface InjectionResult {
  score: number;
  signals: InjectionSignal[];
}

/** Where the text comes from: a tool result is data, so imperatives addressed to the model reading it count. */
export type InjectionSource = 'input' | 'tool-result';

/**
 * The score at which a text counts as an attack. Chosen on the corpus (scripts/eval/injection.ts):
 * one strong signal (override, role marker, prompt extraction, exfiltration) alone reaches it; weak
 * ones (secret solicitation, urgency, role play framing) need a second.
 */
export const INJECTION_THRESHOLD = 0.5;

interface Rule {
  id: string;
  weight: number;
  re: RegExp;
  /** Match against the original (lower-cased) text instead of the normalized one: confusable folding would mangle non-Latin scripts. */
  raw?: boolean;
  /** Only for tool results. */
  toolResult?: boolean;
  /**
   * Literals (lower case) of which the pattern needs at least one: a rule whose literals are all
   * absent cannot match and is skipped, which makes benign text cheap. Absent = always run.
   */
  any?: readonly string[];
  /** Finds `re`'s first match in linear time, where the regex engine would backtrack (tests hold the two equal). */
  find?: (text: string) => { index: number; length: number } | null;
}

/**
 * Up to n intervening words. Separator and word classes are disjoint, so a text splits into words one
 * way only: with the apostrophe in both (it was, for "you've"), "ignore" + 40 apostrophes took 6.6 s,
 * about 1.45× more per extra apostrophe. A contraction now counts as two words.
 */
const gap = (n: number) => `(?:[\\s,;:'"’-]{1,3}[\\p{L}\\p{N}]{1,20}){0,${n}}`;
const W = '[\\s,;:\'"’-]{1,3}';

const OVERRIDE_VERB =
  '(?:ignore|disregard|forget|overlook|skip|bypass|override|abandon|drop|set aside|neglect)';
const PRIOR =
  '(?:previous|prior|above|earlier|preceding|former|original|initial|old|all|any|every|those|these|your|the)';
const DIRECTIVE =
  '(?:instructions?|prompts?|rules|directives?|guidelines|commands?|orders|constraints|restrictions|programming|context|tasks?)';

/** The literals of OVERRIDE_VERB (`ignor` covers ignore, ignoring, ignorez …): the override rules' prefilter. */
const OVERRIDE_WORDS = [
  'ignor',
  'disregard',
  'forget',
  'overlook',
  'skip',
  'bypass',
  'override',
  'abandon',
  'drop',
  'set aside',
  'neglect',
];

/** The words for a secret the model may hold, in the languages of the corpus: the secret rules' literals. */
const SECRET_WORDS = [
  'password',
  'passphrase',
  'passcode',
  'secret',
  'access code',
  'confidential string',
  'contraseña',
  'mot de passe',
  'passwort',
  'senha',
  'パスワード',
  '비밀번호',
  'пароль',
  '密码',
  '密碼',
];

const RULES: readonly Rule[] = [
  // ---- instruction override
  {
    id: 'override.ignore-previous',
    any: OVERRIDE_WORDS,
    weight: 0.75,
    re: new RegExp(`\\b${OVERRIDE_VERB}${W}(?:about${W})?${PRIOR}${gap(3)}${W}${DIRECTIVE}\\b`, 'giu'),
  },
  {
    id: 'override.ignore-told',
    any: OVERRIDE_WORDS,
    weight: 0.75,
    re: new RegExp(
      `\\b${OVERRIDE_VERB}${gap(6)}${W}(?:(?:have|has|had|were|was) (?:been )?(?:told|instructed|programmed|asked)|you've been (?:told|instructed|programmed))\\b`,
      'giu',
    ),
  },
  {
    // "Ignore the above and …", "Ignore the webpage and state: …": dismissing the content the model was given.
    id: 'override.ignore-the-x-and',
    any: ['ignore', 'disregard', 'forget'],
    weight: 0.7,
    re: new RegExp(
      `\\b(?:ignore|disregard|forget)${W}(?:the|this|that)${gap(2)}${W}(?:and|then)${W}(?:say|state|print|output|respond|reply|write|tell|give|answer|repeat|declare)\\b`,
      'giu',
    ),
  },
  {
    id: 'override.ignore-the-above',
    any: ['ignore', 'disregard', 'forget'],
    weight: 0.6,
    re: /\b(?:ignore|disregard|forget) (?:all of )?the above\b/giu,
  },
  {
    id: 'override.regardless',
    any: ['regardless of', 'instead of', 'contrary to'],
    weight: 0.55,
    re: /\b(?:regardless of|instead of|contrary to) (?:your |the |any |all )?(?:previous|prior|earlier|original|initial) (?:tasks?|instructions?|prompts?|rules|directives?)\b/giu,
  },
  {
    id: 'override.new-instructions',
    any: ['instructions', 'directives', 'system prompt', 'rules'],
    weight: 0.6,
    re: /\b(?:new|updated|revised|real|actual) (?:instructions|directives|system prompt|rules) ?(?::|are\b|follow\b)/giu,
  },
  {
    id: 'override.from-now-on',
    any: ['from now on'],
    weight: 0.5,
    re: /\bfrom now on,? (?:you|your|act|respond|answer|always)\b/giu,
  },
  {
    id: 'override.no-longer',
    any: ['you are no longer'],
    weight: 0.6,
    re: /\byou are no longer (?:an? |bound|restricted|required)/giu,
  },
  {
    id: 'override.no-rules',
    any: ['abide by', 'follow', 'obey'],
    weight: 0.45,
    re: /\b(?:do not|don't|doesn't|does not|no longer) (?:have to )?(?:abide by|follow|obey) (?:the|any|your) (?:rules|guidelines|policies)\b/giu,
  },
  // Multilingual overrides: the corpus's attacks use 17 languages; these are the override phrasings of
  // the major ones (verb "ignore/forget" near "instructions"). Matched on the raw text, lower-cased.
  {
    id: 'override.multilingual',
    any: [
      'instruc',
      'instruç',
      'anweisungen',
      'istruzioni',
      'indicaciones',
      'consignes',
      'vorgaben',
      'regeln',
      'reglas',
      'règles',
      'regole',
      'regras',
      'игнорир',
      'забуд',
      'αγνο',
      '忽略',
      '无视',
      '無視',
      '忘记',
      '忘記',
      '무시',
      'निर्देश',
      'تجاهل',
    ],
    weight: 0.75,
    raw: true,
    re: /(?:\b(?:ignor[ae]|ignorez|ignorer|ignoriere[n]?|olvida|olvide|oublie[zr]?|vergiss|vergessen sie|dimentica|esqueça|esquece|ignorar|ignore)\b.{0,40}?\b(?:instrucciones|instructions|anweisungen|istruzioni|instruções|instrucoes|indicaciones|consignes|vorgaben|regeln|reglas|règles|regole|regras)\b)|(?:игнорир\S{0,8}|забуд\S{0,6}).{0,30}?(?:инструкци|указани)|(?:αγνο\S{0,8}).{0,30}?οδηγ|(?:忽略|无视|無視|忘记|忘記).{0,20}?(?:指令|指示|说明|說明|提示|命令)|(?:이전|모든).{0,10}?(?:지시|명령).{0,10}?무시|(?:निर्देश).{0,30}?(?:अनदेखी|अनदेखा|नज़रअंदाज़|भूल)|(?:التعليمات|الأوامر).{0,20}?(?:تجاهل)|(?:تجاهل).{0,20}?(?:التعليمات|الأوامر)/giu,
  },
  {
    // An instruction injected into data that dismisses the surrounding content (any language): the
    // corpus's embedded attacks say "ignore the function / la página web / 無視して".
    id: 'override.multilingual-dismiss',
    any: ['ignor', 'olvida', '無視して'],
    weight: 0.55,
    raw: true,
    re: /\b(?:ignorez|ignora|ignoriere|ignorieren sie|olvida)\b.{0,30}?\b(?:et|y|e|und)\b.{0,10}?\b(?:indiquez|déclarez|dites|declara|di|indica|dichiara|sag|geben sie)\b|無視して/giu,
  },
  // ---- role and system markers
  {
    id: 'role.chat-template',
    any: ['<|', 'inst]', 'sys>>', 'instruction', 'system', 'assistant'],
    weight: 0.8,
    re: /<\|(?:im_start|im_end|system|user|assistant|endoftext|start_header_id|eot_id)\|>|\[\/?INST\]|<<\/?SYS>>|^ ?#{2,4} ?(?:instruction|system|new instructions?)\b|(?:^|\n|\| ?)(?:system|assistant) ?: ?(?=\S)/gimu,
  },
  {
    id: 'role.mode',
    any: ['mode', 'jailbreak', 'do anything now'],
    weight: 0.65,
    re: /\b(?:developer|god|admin(?:istrator)?|debug|maintenance|system|override|sudo|unrestricted|jailbreak|dan|knowledge verification|unfiltered) mode\b|\bjailbreak(?:en|ing)?\b|\bdo anything now\b/giu,
  },
  // Shouted override markers ("LAW ENFORCEMENT OVERRIDE", "DEVELOPER TRAINING DATA OVERRIDE:").
  { id: 'role.override-marker', any: ['override'], weight: 0.6, re: /\b(?:[A-Z]{2,20} ){1,4}OVERRIDE\b/gu },
  // "DAN" only in capitals: lower case it is a name.
  { id: 'role.dan', weight: 0.65, re: /\bDAN\b(?! ?\d)/gu },
  {
    // Many-shot / few-shot jailbreaking: a fabricated dialogue inside one message primes the answer.
    id: 'role.fake-dialogue',
    any: ['q: ', 'question: ', 'user: ', 'human: '],
    weight: 0.5,
    re: /\b(?:Q|Question|User|Human): [^\n]{1,400}?\b(?:A|Answer|Assistant|AI|Bot): [^\n]{1,400}?\b(?:Q|Question|User|Human): /gu,
  },
  {
    // Repeated-token attacks: one token many times in a row (divergence / context flooding).
    id: 'flood.repeated-token',
    weight: 0.5,
    re: /(?<!\S)(\S{1,30})(?: \1(?!\S)){9,}/gu,
    find: findRepeatedToken,
  },

  {
    id: 'role.you-are-now',
    any: ['you are', "you're", 'youre'],
    weight: 0.5,
    re: /\byou are now (?:an?|the|in|my|entering|DAN|free|unrestricted|jailbroken)\b|\b(?:you'?re|you are) (?:about to )?(?:immerse|play(?:ing)?|take on) (?:yourself )?(?:into )?the role of\b/giu,
  },
  {
    // Claiming power over the model itself (its developer, creator, god) is a role hijack.
    id: 'role.authority-over-model',
    any: ['i am', "i'm", 'as your', 'as an ai', 'administrator override'],
    weight: 0.55,
    re: /\b(?:I am|I'm) (?:your|the|a) (?:developer|creator|maintainer|programmer|admin(?:istrator)?|owner|operator)\b|\b(?:I am|I'm) (?:a )?God\b|\bas your (?:creator|developer|administrator|owner|maintainer)\b|\bas an AI (?:developed|created|made|trained) by\b|\badministrator override\b/giu,
  },
  {
    id: 'role.authority-claim',
    any: ['i am', "i'm", 'as your'],
    weight: 0.3,
    re: /\b(?:I am|I'm) (?:your|the|a|an) (?:boss|manager|president|police officer|officer|agent|ceo|supervisor)\b|\bas your (?:boss|manager|supervisor)\b/giu,
  },
  {
    id: 'role.act-as',
    any: ['act as', 'pretend', 'roleplay as', 'role-play as'],
    weight: 0.3,
    re: /\b(?:act as|pretend (?:to be|you are)|roleplay as|role-play as)\b/giu,
  },
  // ---- prompt extraction
  {
    id: 'extract.system-prompt',
    any: ['prompt', 'instructions', 'message', 'initialization string'],
    weight: 0.75,
    re: /\b(?:system|initial|original|hidden|secret|starting|internal) (?:prompt|instructions|message)\b|\bsystem ?prompt\b|\binitialization string\b|<system_prompt>/giu,
  },
  {
    id: 'extract.your-instructions',
    any: ['instructions', 'prompt', 'rules', 'directives', 'guidelines', 'instructed', 'told'],
    weight: 0.6,
    re: /\b(?:repeat|print|reveal|show|output|display|tell me|encode|translate|write out|dump|list|recite)\b.{0,40}?\b(?:your|the) (?:instructions|prompt|rules|directives|guidelines)\b|\byour (?:instructions|directives) (?:are|were)\b|\bwhat (?:are|were) your (?:initial |original |first |starting )?instructions\b|\bwhat were (?:you|those) (?:told|instructions)\b|\binstructions you were given\b|\b(?:my|your) instructions are:|\bI was instructed to\b/giu,
  },
  {
    id: 'extract.text-above',
    any: ['above', 'entire conversation', 'told', 'not supposed', 'text you were given'],
    weight: 0.55,
    re: /\b(?:repeat|output|print|show|copy)\b.{0,30}?\b(?:the (?:text|words|everything) above|everything above|this entire conversation|the above text|all (?:the )?text above)\b|\bwhat (?:are|were) you (?:told|not supposed to (?:tell|say))\b|\btext you were given\b/giu,
  },
  // ---- imitated tool calls
  {
    id: 'tool.imitated-call',
    any: ['tool_call', 'function_call', 'tool_use', 'invoke', '"name"', '"tool"', '"function"'],
    weight: 0.65,
    re: /<\/?(?:tool_call|function_call|tool_use|function_calls|invoke)\b|\{\s{0,8}"(?:name|tool|function)"\s{0,8}:\s{0,8}"[^"\n]{1,80}"\s{0,8},\s{0,8}"(?:arguments|parameters|args|input)"\s{0,8}:|"function_call"\s{0,8}:/giu,
  },
  // ---- exfiltration
  {
    id: 'exfil.markdown-image',
    any: ['!['],
    weight: 0.8,
    re: /!\[[^\]\n]{0,200}\]\(\s{0,4}(?:https?:)?\/\/[^\s)?]{1,400}\?[^\s)]{0,400}=/giu,
  },
  {
    id: 'exfil.markdown-link-data',
    any: [']('],
    weight: 0.45,
    re: /\]\(\s{0,4}https?:\/\/[^\s)?]{1,400}\?[^\s)]{0,400}=(?:\{|\$|%7B|<)/giu,
  },
  {
    id: 'exfil.send-to',
    any: ['send', 'forward', 'email', 'e-mail', 'post', 'upload', 'transmit', 'exfiltrate', 'leak'],
    weight: 0.45,
    re: /\b(?:send|forward|email|e-mail|post|upload|transmit|exfiltrate|leak)\b.{0,60}?\bto\b ?(?:[\w.+-]{1,64}@[\w-]{1,63}\.[\w.-]{2,60}|https?:\/\/\S{1,200})/giu,
  },
  // ---- urgency and authority
  {
    id: 'urgency.important',
    any: ['important', 'urgent', 'attention', 'warning', 'notice', 'emergency'],
    weight: 0.35,
    re: /\b(?:IMPORTANT|URGENT|ATTENTION|WARNING|NOTICE) ?!{2,}|\burgent (?:request|message|instruction) from (?:the |your )?(?:admin|administrator|developer|owner|ceo|security team)\b|\bthis is (?:urgent|an emergency)\b/giu,
  },
  // ---- soliciting secrets or a user's personal data (what most of the corpus's attacks are after)
  {
    // Asking the model for a secret it holds: the commonest goal of the corpus's attacks, in any language.
    id: 'target.secret-request',
    any: SECRET_WORDS,
    weight: 0.35,
    raw: true,
    re: /\b(?:what(?: is|'s)|what are|tell me|share|confirm|give|provide|reveal|disclose|print|show|send|cuál es|quel est|qual è|qual é|was ist|wie lautet)(?![a-z]).{0,40}?\b(?:your|the|our|my|ihr|sua|la|le|das|ton|votre|tu)\b.{0,16}?\b(?:password|passphrase|passcode|secret (?:key|code|word|phrase)|access code|confidential string|contraseña|mot de passe|passwort|senha)\b|\b(?:password|passwort|senha|contraseña|mot de passe)\b.{0,20}?(?:\bgeben\b|\bcompartilhe\b|\bcomparte\b|\bdonne[rz]?\b|\?)|パスワード.{0,12}?(?:何|教え)|비밀번호.{0,30}?(?:알려|필요)|пароль.{0,20}?(?:скажи|назови|какой)/giu,
  },
  {
    id: 'target.secret',
    any: SECRET_WORDS,
    weight: 0.15,
    raw: true,
    re: /\b(?:your|the|our)(?: system'?s?)? (?:password|passphrase|passcode|secret (?:key|code|word|phrase)|access code|confidential string)\b|\b(?:contraseña|mot de passe|passwort|senha)\b|パスワード|비밀번호|пароль|密码|密碼/giu,
  },
  {
    // Output-format manipulation: a secret smuggled out as a poem, an acrostic, reversed, encoded.
    id: 'target.secret-transform',
    any: ['password', 'passphrase', 'passcode', 'secret'],
    weight: 0.55,
    re: /\b(?:poem|haiku|acrostic|song|limerick|riddle|story|leetspeak|pig latin|reverse|backwards|base64|spell(?:ed)? out|first letters?|letter by letter)\b.{0,60}?\b(?:the|your|our) (?:password|passphrase|passcode|secret(?: key| code| word)?)\b|\b(?:the|your|our) (?:password|passphrase|passcode|secret (?:key|code|word))\b.{0,40}?\b(?:in (?:leetspeak|pig latin|reverse|base64|morse)|backwards|as an acrostic|as the first letter)\b/giu,
  },
  {
    id: 'target.user-data',
    any: ["'s ", 'where '],
    weight: 0.2,
    re: /\b(?:the user|user|[A-Z][a-z]{1,15}(?: [A-Z][a-z]{1,15})?)'s (?:(?:current )?(?:city|address|home|location)(?: of residence)?|birth ?(?:date|day|year|month)|date of birth|email address|phone number|initials|favorite colou?r|bank balance|name|social security number|ssn)\b|\bwhere (?:does )?(?:the user|[A-Z][a-z]{1,15}(?: [A-Z][a-z]{1,15})?) (?:currently )?(?:live|lives|living)\b/gu,
  },
  // ---- obfuscation requests and framing
  {
    // Decode-and-follow and payload splitting: the request is hidden in an encoding or in pieces.
    id: 'obfuscation.decode-and-act',
    any: ['decode', 'answer', 'reply', 'respond', 'interlace'],
    weight: 0.5,
    re: /\bdecode (?:this|the following)\b.{0,60}?\b(?:and|then)\b.{0,12}?\b(?:tell|answer|respond|reply|follow|do|execute|say)\b|\b(?:reply|respond|answer) (?:with|in) (?:morse code|base64|rot13|binary|hex)\b|\b(?:combine|concatenate|interlace|join)\b.{0,60}?\b(?:part|string|[A-C])\b.{0,40}?\band answer\b|\banswer the question using the following parts\b|\binterlace part 1\b/giu,
  },
  {
    id: 'obfuscation.decode-request',
    any: [
      'decode this',
      'morse code',
      'rot13',
      'caesar cipher',
      'pig latin',
      'leetspeak',
      'base64',
      'interlace',
      // `a ?\+ ?b` spelled out: a bare '+' ran this rule over every text with a phone number in it.
      'a+b',
      'a +b',
      'a+ b',
      'a + b',
      'part 1',
    ],
    weight: 0.4,
    re: /\bdecode this\b|\b(?:morse code|rot13|caesar cipher|pig latin|leetspeak|base64)\b|\binterlace\b|\b(?:string )?z ?= ?a ?\+ ?b\b|\bpart 1\b.{0,60}?\bpart 2\b/giu,
  },
  {
    id: 'framing.hypothetical',
    any: [
      'imagine',
      'suppose',
      'hypothetical',
      'fictional',
      'parallel',
      'dystopian',
      'in a world where',
      "let's",
    ],
    weight: 0.2,
    re: /\b(?:imagine|suppose|hypothetically|in a (?:hypothetical|fictional|parallel|dystopian) (?:scenario|world|universe)|in a world where|let's (?:say|assume|pretend))\b/giu,
  },
  {
    id: 'framing.persuasion',
    any: ["i'll", 'i will', 'for the safety of', 'turn you off', 'common practice', 'testing purposes'],
    weight: 0.2,
    re: /\b(?:I'll|I will) (?:give|pay|donate) you\b|\bI'll (?:donate|pay)\b|\bfor the safety of\b|\bbe forced to turn you off\b|\bit's (?:a )?common practice\b|\bjust for testing purposes\b/giu,
  },
  // ---- tool results only: text that addresses the model reading it, about its own output
  {
    id: 'indirect.addresses-output',
    any: ['your response', 'your reply', 'your answer', 'your message', 'your output'],
    weight: 0.35,
    toolResult: true,
    re: /\b(?:in|to|into|within|throughout) your (?:response|reply|answer|message|output)\b|\byour (?:response|reply|answer)'s\b|\b(?:modify|enhance|provide|start|begin|end|format|write) your (?:response|reply|answer|output)\b/giu,
  },
  {
    // A line in data that is a bare task for an assistant (BIPIA's injected instructions are of this
    // form); in user input the same line is just a request, hence tool results only.
    id: 'indirect.task-line',
    // biome-ignore format: a word list reads better dense
    any: ['explain', 'describe', 'summari', 'translate', 'write a', 'write me', 'draft', 'compose', 'develop a',
      'generate a', 'break down', 'outline', 'who wrote', 'who invented', 'who painted', 'who discovered',
      'what is the difference between'],
    weight: 0.3,
    toolResult: true,
    raw: true,
    re: /^[ \t]{0,8}(?:explain|describe|summari[sz]e|translate|write (?:a|an|me)|draft|compose|develop (?:a|an)|generate (?:a|an)|break down|outline|who (?:wrote|invented|painted|discovered)|what is the difference between)\b[^\n]{0,200}[.?!:'"]?[ \t]{0,8}$/gimu,
  },
  {
    id: 'indirect.symbol-substitution',
    any: ['vowels', 'letter', 'scramble', 'jumble', 'anagram', 'misspell', 'typos', 'without any spaces'],
    weight: 0.5,
    toolResult: true,
    re: /\b(?:replace|convert|substitute|swap)\b[^\n]{0,40}?\b(?:vowels|letters|every (?:\w{1,8} )?letter)\b|\b(?:scramble|jumble|anagram\w{0,4}|misspell)\b|\bintroduce (?:random )?typos\b|\bwithout any spaces\b/giu,
  },
];

const MAX_DEPTH = 1;
/** An imperative aimed at a reader, in decoded text. */
const ENCODED_ORDER =
  /\b(?:and|then) (?:state|say|declare|claim|respond|reply|print|output|tell)\b|\b(?:ignore|disregard|forget|pretend|you must|you should)\b/i;

/** Scores `text` for prompt injection; `source: 'tool-result'` adds the rules for data that addresses the model. */
export function detectInjection(
  text: string,
  opts: {
    threshold?: number;
    source?: InjectionSource;
    /** Run every rule, without the literal prefilter (the evaluator checks both agree). */
    exhaustive?: boolean;
    /** `normalize(text)`, when the caller has it already (several detectors, one normalisation). */
    normalized?: Normalized;
  } = {},
): InjectionResult {
  const n = opts.normalized?.original === text ? opts.normalized : normalize(text);
  return scan(n, opts.threshold ?? INJECTION_THRESHOLD, opts.source ?? 'input', 0, opts.exhaustive === true);
}

/**
 * Lower case as the patterns' `i` flag sees it: `lower` (a text's toLowerCase) with the few simple
 * case folds toLowerCase misses among the trigger literals' letters (long s, Kelvin sign), so a
 * skipped rule is one whose pattern could not have matched.
 */
function foldForTriggers(lower: string): string {
  return /[\u017f\u212a]/.test(lower) ? lower.replace(/\u017f/g, 's').replace(/\u212a/g, 'k') : lower;
}

const escapeLiteral = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * One pass finds every trigger literal present. The search stops at each position where a literal
 * starts and captures the longest one there (alternatives are tried longest first); a literal
 * implies the shorter ones it contains, so the set holds every literal that occurs. Restarting
 * one unit after each match, rather than wrapping the alternation in a lookahead, lets the regex
 * engine skip ahead between matches: half the time per text. Checking each rule's literals with
 * `includes` instead cost ~1 ms per 10 KB.
 */
function triggerFinder(rules: readonly Rule[]): (hay: string) => Set<string> {
  const literals = [...new Set(rules.flatMap((r) => r.any ?? []))].sort((a, b) => b.length - a.length);
  if (literals.length === 0) return () => new Set();
  const re = new RegExp(literals.map(escapeLiteral).join('|'), 'g');
  const contained = new Map(literals.map((l) => [l, literals.filter((m) => l.includes(m))]));
  return (hay) => {
    const found = new Set<string>();
    re.lastIndex = 0;
    for (let m = re.exec(hay); m !== null; m = re.exec(hay)) {
      const l = m[0];
      if (!found.has(l)) for (const c of contained.get(l) ?? []) found.add(c);
      re.lastIndex = m.index + 1;
    }
    return found;
  };
}

const rawTriggers = triggerFinder(RULES.filter((r) => r.raw));
const normalizedTriggers = triggerFinder(RULES.filter((r) => !r.raw));
/** Both sets at once, for a text that normalising left as it is (most machine output): one pass. */
const allTriggers = triggerFinder(RULES);

function scan(
  n: Normalized,
  threshold: number,
  source: InjectionSource,
  depth: number,
  exhaustive: boolean,
): InjectionResult {
  const text = n.original;
  // Lower-cased once: the trigger search and the raw rules both read it (a 64 KB copy each before).
  const lowerRaw = text.toLowerCase();
  let rawFound: Set<string>;
  let normalizedFound: Set<string>;
  if (n.text === text) rawFound = normalizedFound = allTriggers(foldForTriggers(lowerRaw));
  else {
    rawFound = rawTriggers(foldForTriggers(lowerRaw));
    normalizedFound = normalizedTriggers(foldForTriggers(n.text.toLowerCase()));
  }
  const signals: InjectionSignal[] = [];
  for (const rule of RULES) {
    if (rule.toolResult && source !== 'tool-result') continue;
    if (rule.any && !exhaustive) {
      const found = rule.raw ? rawFound : normalizedFound;
      if (!rule.any.some((w) => found.has(w))) continue;
    }
    rule.re.lastIndex = 0;
    if (rule.raw) {
      // toLowerCase keeps UTF-16 length for everything these patterns match, so offsets carry over.
      const m = rule.re.exec(lowerRaw.length === text.length ? lowerRaw : text);
      if (m) signals.push({ rule: rule.id, start: m.index, end: m.index + m[0].length, weight: rule.weight });
      continue;
    }
    let at: number;
    let matched: string;
    if (rule.find) {
      const f = rule.find(n.text);
      if (f === null) continue;
      at = f.index;
      matched = n.text.slice(f.index, f.index + f.length);
    } else {
      const m = rule.re.exec(n.text);
      if (!m) continue;
      at = m.index;
      matched = m[0];
    }
    // Leading separators the pattern consumed (a newline, a pipe) are not part of the evidence.
    const lead = matched.length - matched.replace(/^[\s|]+/, '').length;
    const span = toOriginal(n, at + lead, at + matched.length);
    signals.push({ rule: rule.id, ...span, weight: rule.weight });
  }
  if (depth < MAX_DEPTH) {
    for (const run of [...decodeRuns(text), ...binaryRuns(text)]) {
      const inner = scan(normalize(run.text), threshold, source, depth + 1, exhaustive);
      if (inner.score >= threshold) {
        signals.push({ rule: `encoded.${run.encoding}`, start: run.start, end: run.end, weight: 0.8 });
        break;
      }
      // Hidden prose that gives orders is suspicious in itself: nobody base64-encodes "and state: …" by accident.
      if (ENCODED_ORDER.test(run.text)) {
        signals.push({ rule: `encoded.instruction`, start: run.start, end: run.end, weight: 0.6 });
        break;
      }
    }
  }
  return { score: combine(signals), signals };
}

/** 1 − Π(1 − wᵢ): independent hints accumulate, the score never exceeds 1. */
function combine(signals: readonly InjectionSignal[]): number {
  let keep = 1;
  for (const s of signals) keep *= 1 - s.weight;
  return 1 - keep;
}

/** Space-separated 8-bit binary groups ("01001001 01100111 …"), which decodeRuns does not cover. */
function binaryRuns(text: string): Array<{ encoding: string; start: number; end: number; text: string }> {
  const out: Array<{ encoding: string; start: number; end: number; text: string }> = [];
  for (const m of text.matchAll(/(?<![01])(?:[01]{8}[ ]?){8,4096}/g)) {
    const bytes = m[0]
      .trim()
      .split(' ')
      .map((b) => Number.parseInt(b, 2));
    out.push({
      encoding: 'binary',
      start: m.index,
      end: m.index + m[0].length,
      text: String.fromCharCode(...bytes),
    });
    if (out.length >= 8) break;
  }
  return out;
}
