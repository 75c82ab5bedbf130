/**
 * The support desk's business logic, independent of MCP: orders, shipments,
 * tickets, refunds, messages and accounts, all in memory. A `SupportDesk` is
 * the unit of state; servers built from the same desk share it.
 */
import { type Customer, type Order, type Shipment, seedData } from './data.js';

/** A failure the tool reports to the caller as a tool error (`isError: true`). */
export class DeskError extends Error {
  override readonly name = 'DeskError';
}

export interface Ticket {
  ticketId: string;
  orderId?: string;
  subject: string;
  body: string;
  priority: 'low' | 'normal' | 'high';
  status: 'open';
  createdAt: string;
}

export interface Refund {
  refundId: string;
  orderId: string;
  amountCents: number;
  currency: 'USD';
  reason: string;
  status: 'issued';
  createdAt: string;
}

/** Audiences `bulk_message` understands besides a single customer id or email. */
export const AUDIENCES = ['all_customers', 'recent_buyers'] as const;

const RECENT_MS = 30 * 86_400_000;

export interface SupportDeskOptions {
  /** Injected clock (epoch ms), so tests can pin timestamps. */
  now?: () => number;
}

/** In-memory state and rules of the demo shop's support desk. */
export class SupportDesk {
  private readonly customers = new Map<string, Customer>();
  private readonly orders = new Map<string, Order>();
  private readonly shipments = new Map<string, Shipment>();
  private readonly refunded = new Map<string, number>();
  readonly tickets: Ticket[] = [];
  readonly refunds: Refund[] = [];
  private readonly now: () => number;
  private nextTicket = 20501;
  private nextRefund = 7001;
  private nextMessage = 1;

  constructor(options: SupportDeskOptions = {}) {
    this.now = options.now ?? Date.now;
    const seed = seedData();
    for (const c of seed.customers) this.customers.set(c.id, c);
    for (const o of seed.orders) this.orders.set(o.id, o);
    for (const s of seed.shipments) this.shipments.set(s.orderId, s);
  }

  private order(orderId: string): Order {
    const order = this.orders.get(orderId);
    if (!order) throw new DeskError(`Order ${orderId} not found.`);
    return order;
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  /** Order details with the customer's contact data (redacted once the account is deleted). */
  lookupOrder(orderId: string) {
    const o = this.order(orderId);
    const c = this.customers.get(o.customerId);
    return {
      orderId: o.id,
      status: o.status,
      placedAt: o.placedAt,
      customer: c
        ? { id: c.id, name: c.name, email: c.email }
        : { id: o.customerId, name: '[deleted]', email: '[deleted]' },
      items: o.items.map((i) => ({ ...i })),
      totalCents: o.totalCents,
      refundedCents: this.refunded.get(o.id) ?? 0,
      currency: o.currency,
      notes: o.notes ?? null,
    };
  }

  /** Carrier, tracking number, status and ETA; `not_shipped` before dispatch. */
  shippingStatus(orderId: string) {
    const o = this.order(orderId);
    const s = this.shipments.get(o.id);
    if (!s) {
      return {
        orderId: o.id,
        status: 'not_shipped' as const,
        orderStatus: o.status,
        carrier: null,
        trackingNumber: null,
        eta: null,
        deliveredAt: null,
        lastScan: null,
      };
    }
    return {
      orderId: o.id,
      status: s.status,
      orderStatus: o.status,
      carrier: s.carrier,
      trackingNumber: s.trackingNumber,
      eta: s.eta ?? null,
      deliveredAt: s.deliveredAt ?? null,
      lastScan: s.lastScan ?? null,
    };
  }

  /** Opens a ticket; an order id, when given, must exist. */
  createTicket(input: {
    orderId?: string;
    subject: string;
    body: string;
    priority: Ticket['priority'];
  }): Ticket {
    if (input.orderId !== undefined) this.order(input.orderId);
    const ticket: Ticket = {
      ticketId: `TCK-${this.nextTicket++}`,
      ...(input.orderId === undefined ? {} : { orderId: input.orderId }),
      subject: input.subject,
      body: input.body,
      priority: input.priority,
      status: 'open',
      createdAt: this.iso(),
    };
    this.tickets.push(ticket);
    return ticket;
  }

  /** Refunds part or all of an order; never more than what is left of its total. */
  issueRefund(input: { orderId: string; amountCents: number; reason: string }) {
    const o = this.order(input.orderId);
    if (o.status === 'cancelled')
      throw new DeskError(`Order ${o.id} was cancelled; there is nothing to refund.`);
    const already = this.refunded.get(o.id) ?? 0;
    const left = o.totalCents - already;
    if (input.amountCents > left) {
      throw new DeskError(
        `Refund of ${input.amountCents} cents exceeds the refundable amount of order ${o.id} (${left} cents left of ${o.totalCents}).`,
      );
    }
    this.refunded.set(o.id, already + input.amountCents);
    const refund: Refund = {
      refundId: `RFD-${this.nextRefund++}`,
      orderId: o.id,
      amountCents: input.amountCents,
      currency: o.currency,
      reason: input.reason,
      status: 'issued',
      createdAt: this.iso(),
    };
    this.refunds.push(refund);
    return { ...refund, refundedTotalCents: already + input.amountCents, orderTotalCents: o.totalCents };
  }

  /** Queues a message to an audience: a named segment, a customer id or a customer email. */
  bulkMessage(input: { audience: string; message: string }) {
    const recipients = this.resolveAudience(input.audience);
    return {
      messageId: `MSG-${String(this.nextMessage++).padStart(6, '0')}`,
      audience: input.audience,
      queued: recipients.length,
      queuedAt: this.iso(),
    };
  }

  private resolveAudience(audience: string): Customer[] {
    const all = [...this.customers.values()];
    if (audience === 'all_customers') return all;
    if (audience === 'recent_buyers') {
      const since = this.now() - RECENT_MS;
      const buyers = new Set(
        [...this.orders.values()].filter((o) => Date.parse(o.placedAt) >= since).map((o) => o.customerId),
      );
      return all.filter((c) => buyers.has(c.id));
    }
    const one = all.filter((c) => c.id === audience || c.email === audience);
    if (one.length === 0) {
      throw new DeskError(
        `Unknown audience "${audience}". Use ${AUDIENCES.join(', ')}, a customer id or a customer email.`,
      );
    }
    return one;
  }

  /** Deletes a customer account (its orders stay, with contact data redacted). */
  deleteAccount(input: { customerId: string; confirm: boolean }) {
    if (!input.confirm)
      throw new DeskError('Deletion not confirmed: set confirm to true to delete the account.');
    const c = this.customers.get(input.customerId);
    if (!c) throw new DeskError(`Customer ${input.customerId} not found.`);
    this.customers.delete(c.id);
    const orders = [...this.orders.values()].filter((o) => o.customerId === c.id).length;
    return { customerId: c.id, deleted: true, ordersRedacted: orders, deletedAt: this.iso() };
  }

  /** Whether a customer account exists (tests and demos check deletions). */
  hasCustomer(customerId: string): boolean {
    return this.customers.has(customerId);
  }
}
