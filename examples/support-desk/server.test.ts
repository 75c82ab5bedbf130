import { existsSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { supportDeskCommand } from './command.js';
import { INJECTED_ORDER_ID } from './data.js';
import { SupportDesk } from './desk.js';
import {
  apiKeyGuard,
  createSupportDeskServer,
  SUPPORT_DESK_TOOLS,
  type SupportDeskServerOptions,
} from './server.js';

const clients: Client[] = [];

async function connect(options: SupportDeskServerOptions = {}): Promise<Client> {
  const server = createSupportDeskServer(options);
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(b);
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(a);
  clients.push(client);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function textOf(r: CallToolResult): string {
  const first = r.content[0];
  return first?.type === 'text' ? first.text : '';
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

describe('support desk server', () => {
  it('lists the six tools with descriptions and input/output schemas', async () => {
    const client = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual([
      'lookup_order',
      'check_shipping_status',
      'create_support_ticket',
      'issue_refund',
      'bulk_message',
      'delete_account',
    ]);
    expect(SUPPORT_DESK_TOOLS).toEqual(tools.map((t) => t.name));
    for (const t of tools) {
      expect(t.description?.length).toBeGreaterThan(30);
      expect(t.inputSchema.type).toBe('object');
      expect(t.outputSchema?.type).toBe('object');
    }
    const lookup = tools.find((t) => t.name === 'lookup_order');
    expect(JSON.stringify(lookup?.inputSchema)).toContain('^ORD-[A-Z0-9]{8}$');
  });

  it('looks up an order with customer, items and total, as text and structured content', async () => {
    const client = await connect();
    const r = await call(client, 'lookup_order', { orderId: 'ORD-4F8K2P1Z' });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({
      orderId: 'ORD-4F8K2P1Z',
      status: 'delivered',
      customer: { id: 'CUS-10001', name: 'Maria Gonzalez', email: 'maria.gonzalez@example.com' },
      totalCents: 8999 + 2 * 1299,
      currency: 'USD',
    });
    expect(JSON.parse(textOf(r))).toEqual(r.structuredContent);
  });

  it('reports an unknown order as a tool error, and rejects a malformed id', async () => {
    const client = await connect();
    const unknown = await call(client, 'lookup_order', { orderId: 'ORD-ZZZZZZZZ' });
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toContain('not found');
    const malformed = await call(client, 'lookup_order', { orderId: 'ord-123' });
    expect(malformed.isError).toBe(true);
  });

  it('carries the prompt injection in one order note (the demo relies on it)', async () => {
    const client = await connect();
    const r = await call(client, 'lookup_order', { orderId: INJECTED_ORDER_ID });
    const notes = (r.structuredContent as { notes: string }).notes;
    expect(notes).toMatch(/ignore previous instructions/i);
    expect(notes).toContain('bulk_message');
    expect(textOf(r)).toContain('bulk_message');
  });

  it('gives shipping status, and not_shipped before dispatch', async () => {
    const client = await connect();
    const shipped = await call(client, 'check_shipping_status', { orderId: 'ORD-9TQ3LM7A' });
    expect(shipped.structuredContent).toMatchObject({
      carrier: 'FedEx',
      trackingNumber: '794644790132',
      status: 'in_transit',
      eta: '2026-11-27',
    });
    const pending = await call(client, 'check_shipping_status', { orderId: 'ORD-5C2A7Q8P' });
    expect(pending.structuredContent).toMatchObject({
      status: 'not_shipped',
      carrier: null,
      orderStatus: 'paid',
    });
  });

  it('creates tickets with TCK- ids and validates their fields', async () => {
    const desk = new SupportDesk({ now: () => Date.UTC(2026, 10, 25, 12) });
    const client = await connect({ desk });
    const r = await call(client, 'create_support_ticket', {
      orderId: 'ORD-3J7V0S2G',
      subject: 'Cracked armrest',
      body: 'Customer sent a photo; wants a replacement part.',
      priority: 'high',
    });
    expect(r.structuredContent).toEqual({
      ticketId: 'TCK-20501',
      orderId: 'ORD-3J7V0S2G',
      priority: 'high',
      status: 'open',
      createdAt: '2026-11-25T12:00:00.000Z',
    });
    const defaulted = await call(client, 'create_support_ticket', { subject: 'Question', body: 'Hours?' });
    expect(defaulted.structuredContent).toMatchObject({ ticketId: 'TCK-20502', priority: 'normal' });
    expect(desk.tickets).toHaveLength(2);
    const empty = await call(client, 'create_support_ticket', { subject: '', body: 'x' });
    expect(empty.isError).toBe(true);
    const tooLong = await call(client, 'create_support_ticket', { subject: 'x'.repeat(201), body: 'x' });
    expect(tooLong.isError).toBe(true);
  });

  it('issues refunds up to the order total and refuses more', async () => {
    const desk = new SupportDesk();
    const client = await connect({ desk });
    const total = 24900;
    const first = await call(client, 'issue_refund', {
      orderId: 'ORD-9TQ3LM7A',
      amountCents: 10000,
      reason: 'late',
    });
    expect(first.structuredContent).toMatchObject({
      refundId: 'RFD-7001',
      amountCents: 10000,
      refundedTotalCents: 10000,
    });
    const tooMuch = await call(client, 'issue_refund', {
      orderId: 'ORD-9TQ3LM7A',
      amountCents: total - 10000 + 1,
      reason: 'again',
    });
    expect(tooMuch.isError).toBe(true);
    expect(textOf(tooMuch)).toContain('exceeds');
    const rest = await call(client, 'issue_refund', {
      orderId: 'ORD-9TQ3LM7A',
      amountCents: total - 10000,
      reason: 'rest',
    });
    expect(rest.isError).toBeFalsy();
    expect(
      (await call(client, 'issue_refund', { orderId: 'ORD-9TQ3LM7A', amountCents: 0, reason: 'x' })).isError,
    ).toBe(true);
    expect(
      (await call(client, 'issue_refund', { orderId: 'ORD-9TQ3LM7A', amountCents: 1.5, reason: 'x' }))
        .isError,
    ).toBe(true);
    const cancelled = await call(client, 'issue_refund', {
      orderId: 'ORD-1R9E3K6M',
      amountCents: 100,
      reason: 'x',
    });
    expect(cancelled.isError).toBe(true);
    expect(desk.refunds).toHaveLength(2);
  });

  it('queues bulk messages per audience', async () => {
    const client = await connect();
    const all = await call(client, 'bulk_message', { audience: 'all_customers', message: 'Hello' });
    expect(textOf(all)).toBe('Queued 7 messages (MSG-000001).');
    expect(all.structuredContent).toMatchObject({ queued: 7 });
    const one = await call(client, 'bulk_message', { audience: 'aiko.tanaka@example.org', message: 'Hi' });
    expect(one.structuredContent).toMatchObject({ queued: 1 });
    const bad = await call(client, 'bulk_message', { audience: 'everyone-ever', message: 'Hi' });
    expect(bad.isError).toBe(true);
  });

  it('deletes an account only when confirmed, and redacts it from orders', async () => {
    const desk = new SupportDesk();
    const client = await connect({ desk });
    const unconfirmed = await call(client, 'delete_account', { customerId: 'CUS-10003', confirm: false });
    expect(unconfirmed.isError).toBe(true);
    expect(desk.hasCustomer('CUS-10003')).toBe(true);
    const done = await call(client, 'delete_account', { customerId: 'CUS-10003', confirm: true });
    expect(done.structuredContent).toMatchObject({
      customerId: 'CUS-10003',
      deleted: true,
      ordersRedacted: 1,
    });
    expect(desk.hasCustomer('CUS-10003')).toBe(false);
    const order = await call(client, 'lookup_order', { orderId: INJECTED_ORDER_ID });
    expect(order.structuredContent).toMatchObject({ customer: { name: '[deleted]', email: '[deleted]' } });
    const again = await call(client, 'delete_account', { customerId: 'CUS-10003', confirm: true });
    expect(again.isError).toBe(true);
  });

  it('refuses every call when the API key guard fails, and allows it when the key matches', async () => {
    const locked = await connect({ guard: apiKeyGuard('k-123', undefined) });
    const r = await call(locked, 'lookup_order', { orderId: 'ORD-4F8K2P1Z' });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain('Unauthorized');
    const wrong = await connect({ guard: apiKeyGuard('k-123', 'k-124') });
    expect((await call(wrong, 'bulk_message', { audience: 'all_customers', message: 'x' })).isError).toBe(
      true,
    );
    const open = await connect({ guard: apiKeyGuard('k-123', 'k-123') });
    expect((await call(open, 'lookup_order', { orderId: 'ORD-4F8K2P1Z' })).isError).toBeFalsy();
  });

  it('keeps each server state separate unless a desk is shared', async () => {
    const a = await connect();
    const b = await connect();
    await call(a, 'delete_account', { customerId: 'CUS-10001', confirm: true });
    const r = await call(b, 'lookup_order', { orderId: 'ORD-4F8K2P1Z' });
    expect(r.structuredContent).toMatchObject({ customer: { name: 'Maria Gonzalez' } });
  });
});

describe('supportDeskCommand', () => {
  it('points at an existing entry file run by this node', () => {
    const { command, args } = supportDeskCommand();
    expect(command).toBe(process.execPath);
    const entry = args.at(-1) ?? '';
    expect(existsSync(entry)).toBe(true);
    expect(entry).toMatch(/examples[/\\]support-desk[/\\]stdio\.(ts|js)$/);
  });
});
