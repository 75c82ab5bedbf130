/**
 * What inspection adds to a call (issue #7): the inspect-output step's work on
 * a tool result (every detector, redaction, the injection wrapper), and the
 * inspect-input step's on typical arguments. The budget: a 10 KB
 * result inspected in under 1 ms (median).
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { inspectResult, type ResultInspectionOptions } from '../../src/inspect/index.js';
import { inspectInput } from '../../src/pipeline/inspect-input.js';
import type { CallState } from '../../src/pipeline/types.js';
import { type BenchContext, type MicroResult, median, run, usRow } from './harness.js';

const G = 'inspection';

/** The macro benchmark's echo text: prose, nothing to find. */
const PROSE = 'The quick brown fox jumps over the lazy dog. 0123456789 ';
/** An order record as a support tool returns it: contact data, a card, a note; one secret in 10 KB. */
const RECORD =
  'Order ORD-4F8K2P1Z placed 2026-11-02 by Jane Doe <jane.doe@example.com>, +1 415-555-0132. ' +
  'Paid with card 4539 1488 0343 6467. Note from the customer: please leave the parcel at the back door. ';

const fill = (unit: string, chars: number) => unit.repeat(Math.ceil(chars / unit.length)).slice(0, chars);

const OPTIONS: ResultInspectionOptions = {
  pii: 'redact',
  piiTypes: ['EMAIL_ADDRESS', 'PHONE_NUMBER', 'CREDIT_CARD', 'IBAN_CODE', 'US_SSN'],
  secrets: 'redact',
  injection: 'wrap',
  injectionThreshold: 0.5,
  tool: 'lookup_order',
};

/** The inspection group. */
export async function inspectionBench(ctx: BenchContext): Promise<MicroResult[]> {
  const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });
  const prose10 = text(fill(PROSE, 10 * 1024));
  const prose1 = text(fill(PROSE, 1024));
  const record10 = text(`${fill(RECORD, 10 * 1024 - 40)} key AKIAZ7QH4KD2LMN3PQ5T`);
  const structured: CallToolResult = {
    content: [],
    structuredContent: {
      orders: Array.from({ length: 40 }, (_, i) => ({
        id: `ORD-${String(i).padStart(8, '0')}`,
        customer: { name: 'Jane Doe', email: 'jane.doe@example.com' },
        note: 'Please leave the parcel at the back door.',
        totalCents: 2599 + i,
      })),
    },
  };
  const rows: MicroResult[] = [];
  const cases: Array<[string, CallToolResult, string]> = [
    ['inspectResult, 10 KB prose (nothing found)', prose10, 'the macro echo text; budget < 1 ms'],
    ['inspectResult, 1 KB prose (nothing found)', prose1, ''],
    ['inspectResult, 10 KB order records (PII, a key)', record10, 'redacts every email, phone and card'],
    ['inspectResult, structured content (40 orders)', structured, 'string leaves walked one by one'],
  ];
  for (const [name, result, note] of cases) {
    ctx.progress(`inspection: ${name}`);
    const m = await run(() => inspectResult(result, OPTIONS), ctx.timing);
    const found = await inspectResult(result, OPTIONS);
    rows.push(usRow(G, name, m, `${note}${note ? '; ' : ''}${found.findings.redacted} spans redacted`));
  }

  const step = inspectInput({
    inspection: {
      arguments: { injection: true, secrets: true, pii: false },
      results: { ...OPTIONS, piiTypes: [...OPTIONS.piiTypes] },
    },
  });
  const state = (parameters: Record<string, unknown>) => ({ parameters }) as unknown as CallState;
  for (const [name, parameters] of [
    ['inspect-input, an order id', { orderId: 'ORD-4F8K2P1Z' }],
    [
      'inspect-input, a 400-character ticket body',
      { orderId: 'ORD-4F8K2P1Z', subject: 'Damaged keyboard', body: fill(RECORD, 400), priority: 'high' },
    ],
  ] as const) {
    ctx.progress(`inspection: ${name}`);
    const m = await run(() => step.run(state(parameters)), ctx.timing);
    rows.push(
      usRow(
        G,
        name,
        m,
        `injection + secrets on every key and string value; median ${median(m.usPerOp).toFixed(0)} µs`,
      ),
    );
  }
  return rows;
}
