/**
 * Tool-definition pinning (issue #7) in front of the upstream pool: only a tool
 * whose definition hashes to the one an operator (or, for a clean first sight
 * in `auto` mode, the gateway) approved is published and callable. A new tool
 * waits for approval when the mode is `operator` or its definition reads as an
 * injection; a changed definition ("rug pull") is quarantined until someone
 * approves it again, whatever the mode.
 *
 * The store is the source of truth, shared by every gateway process: pins are
 * re-read on every reconcile, which runs when an upstream's list changes and
 * every `refreshMs` (default 5 s), so an approval made through another process
 * shows here within that bound. Publication is checked synchronously against
 * the live definition, so a change is withheld at once, before the store has
 * even heard of it; a store that cannot be read publishes nothing (fail closed).
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type AuditInput, canonicalJson } from '../audit/index.js';
import { WardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import type { AggregatedTool, CallToolOptions } from '../upstream/index.js';
import { type Clock, randomId, systemClock } from '../util/clock.js';
import { definitionOf, type ToolDefinition, toolHash } from './hash.js';
import { type DefinitionInspection, inspectDefinition } from './inspect.js';
import { type PinKey, type PinStatus, PinStore, type SeenDefinition, type ToolPin } from './pins.js';

/** What pinning needs of the upstream pool (UpstreamPool has it). */
export interface ToolSource {
  listTools(): AggregatedTool[];
  getTool(publicName: string): AggregatedTool | undefined;
  callTool(
    publicName: string,
    args: Record<string, unknown>,
    options?: CallToolOptions,
  ): Promise<CallToolResult>;
  onToolsChanged(listener: (tools: AggregatedTool[]) => void): () => void;
}

/** `auto`: a clean first sight is approved by the gateway; `operator`: every first sight waits for an operator. */
export type PinningMode = 'auto' | 'operator';

/** A tool's state in this process: `unverified` when its pin could not be read (not published). */
export type ToolState = PinStatus | 'unverified';

export interface PinnedToolsOptions {
  pool: ToolSource;
  store: Store;
  audit: { append(input: AuditInput): Promise<unknown> };
  mode: PinningMode;
  clock?: Clock;
  log?: {
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
    info(obj: object, msg: string): void;
  };
  /** How often pins are re-read (approvals made through other processes). Default 5 s. */
  refreshMs?: number;
}

/** One upstream tool as operators see it. */
export interface ToolView {
  /** Public name. */
  name: string;
  upstream: string;
  /** The tool's name at the upstream. */
  upstreamName: string;
  state: ToolState;
  /** Hash of the definition the upstream lists now. */
  hash: string;
  pin: ToolPin | undefined;
}

/** A tool in full: its current definition, what was approved, and what changed. */
export interface ToolDetail extends ToolView {
  definition: ToolDefinition;
  inspection: DefinitionInspection;
  /** Top-level fields of the approved definition that differ now (a quarantined tool's rug pull). */
  changes: Array<{ field: string; before: unknown; after: unknown }>;
}

export const PIN_RULES = {
  pending: 'tool.pin-pending',
  quarantined: 'tool.pin-quarantined',
  unverified: 'tool.pin-unverified',
} as const;

const AUTO = 'system:auto';
const silent = { warn: () => {}, error: () => {}, info: () => {} };
const keyOf = (k: PinKey) => `${k.upstream}\u0000${k.tool}`;
const pinKey = (t: AggregatedTool): PinKey => ({ upstream: t.upstream, tool: t.upstreamName });

/** The refusal for calling a tool in `state` (never approved, quarantined, or unverifiable). */
export function withheldError(name: string, state: Exclude<ToolState, 'approved'>): WardenError {
  const how = `run: warden tools show ${name}, then warden tools approve ${name} --hash <hash> (admin)`;
  if (state === 'quarantined') {
    return new WardenError('TOOL_QUARANTINED', 'This tool is quarantined until an operator re-approves it', {
      rule: PIN_RULES.quarantined,
      detail: `the definition of ${name} changed since it was approved; ${how}`,
    });
  }
  if (state === 'unverified') {
    return new WardenError('STORE_UNAVAILABLE', 'Tool definitions cannot be verified right now', {
      rule: PIN_RULES.unverified,
      detail: `the pin of ${name} could not be read from the store`,
    });
  }
  return new WardenError('TOOL_NOT_APPROVED', 'This tool is awaiting operator approval', {
    rule: PIN_RULES.pending,
    detail: `${name} was never approved; ${how}`,
  });
}

/** The upstream pool with only pinned, unchanged tools published and callable. */
export class PinnedTools {
  private readonly pins: PinStore;
  private readonly clock: Clock;
  private readonly log: NonNullable<PinnedToolsOptions['log']>;
  private cache = new Map<string, ToolPin>();
  /** False until pins were read, and after a failed read: nothing is published then. */
  private loaded = false;
  private published: AggregatedTool[] = [];
  private byName = new Map<string, AggregatedTool>();
  private signature = '';
  private readonly listeners = new Set<(tools: AggregatedTool[]) => void>();
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly opts: PinnedToolsOptions) {
    this.pins = new PinStore(opts.store);
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? silent;
  }

  /** Reads the pins, settles every listed tool, then follows the pool and the store. */
  async start(): Promise<void> {
    this.unsubscribe = this.opts.pool.onToolsChanged(() => {
      // Withhold a changed definition at once; the store hears of it in the reconcile.
      this.recompute();
      void this.reconcile();
    });
    await this.reconcile();
    this.timer = setInterval(() => void this.reconcile(), this.opts.refreshMs ?? 5_000);
    this.timer.unref();
  }

  /** Stops following the pool and the store. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.unsubscribe?.();
    await this.running;
  }

  /** The published tools: approved, and listed now exactly as approved. */
  listTools(): AggregatedTool[] {
    return [...this.published];
  }

  /** The published tool called `publicName`, if any. */
  getTool(publicName: string): AggregatedTool | undefined {
    return this.byName.get(publicName);
  }

  /** Subscribes to changes of the published list (notifications/tools/list_changed); returns unsubscribe. */
  onToolsChanged(listener: (tools: AggregatedTool[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Why an upstream tool called `publicName` is not published, if it exists and is not. */
  withheld(publicName: string): Exclude<ToolState, 'approved'> | undefined {
    const tool = this.opts.pool.getTool(publicName);
    if (!tool) return undefined;
    const state = this.stateOf(tool);
    return state === 'approved' ? undefined : state;
  }

  /** Calls a tool only if its live definition is the approved one (checked again here: defence in depth). */
  async callTool(
    publicName: string,
    args: Record<string, unknown>,
    options: CallToolOptions = {},
  ): Promise<CallToolResult> {
    const live = this.opts.pool.getTool(publicName);
    if (live) {
      const state = this.stateOf(live);
      if (state !== 'approved') throw withheldError(publicName, state);
    }
    // Not listed: the pool answers TOOL_UNKNOWN.
    return this.opts.pool.callTool(publicName, args, options);
  }

  /** Every tool the upstreams list now, with its pin and state (for operators). */
  views(): ToolView[] {
    return this.opts.pool.listTools().map((t) => this.view(t));
  }

  /** One tool in full, or undefined when no upstream lists `publicName`. */
  detail(publicName: string): ToolDetail | undefined {
    const tool = this.opts.pool.getTool(publicName);
    if (!tool) return undefined;
    const view = this.view(tool);
    const definition = definitionOf(tool);
    const inspection =
      view.pin?.inspection && (view.pin.pendingHash ?? view.pin.approvedHash) === view.hash
        ? view.pin.inspection
        : inspectDefinition(definition);
    const before = view.pin?.approvedDefinition;
    const changes: ToolDetail['changes'] = [];
    if (before && view.pin?.approvedHash !== view.hash) {
      const a = before as unknown as Record<string, unknown>;
      const b = definition as unknown as Record<string, unknown>;
      for (const field of ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations']) {
        if (canonicalJson(a[field]) !== canonicalJson(b[field])) {
          changes.push({ field, before: a[field] ?? null, after: b[field] ?? null });
        }
      }
    }
    return { ...view, definition, inspection, changes };
  }

  /**
   * An operator approves the definition `publicName` has now. With `expectHash`, only if that is
   * still it (the operator reviewed that one). Throws TOOL_UNKNOWN, TOOL_DEFINITION_STALE,
   * STORE_UNAVAILABLE, AUDIT_UNAVAILABLE.
   */
  async approve(
    publicName: string,
    input: { operatorId: string; expectHash?: string; comment?: string; traceId: string; via?: string },
  ): Promise<{ view: ToolView; repeated: boolean }> {
    if (!this.opts.pool.getTool(publicName)) {
      throw new WardenError('TOOL_UNKNOWN', 'No upstream lists this tool', { rule: 'tool.unknown' });
    }
    // Record what this process sees now, so the store's pending definition is the one approved.
    await this.reconcile();
    const tool = this.opts.pool.getTool(publicName);
    if (!tool) throw new WardenError('TOOL_UNKNOWN', 'No upstream lists this tool', { rule: 'tool.unknown' });
    const hash = toolHash(tool);
    const stale = (why: string) =>
      new WardenError('TOOL_DEFINITION_STALE', 'The tool definition changed since the hash you reviewed', {
        rule: 'tool.pin-stale',
        detail: why,
        data: { currentHash: hash },
      });
    if (input.expectHash !== undefined && input.expectHash !== hash) {
      throw stale(`reviewed ${input.expectHash}, the upstream lists ${hash} now`);
    }
    const key = pinKey(tool);
    const before = await this.read(key);
    if (!before) {
      throw new WardenError('STORE_UNAVAILABLE', 'The tool could not be recorded; try again', {
        detail: `no pin for ${publicName} after reconciling`,
      });
    }
    if (before.status === 'approved' && before.approvedHash === hash) {
      return { view: this.view(tool), repeated: true };
    }
    if (before.pendingHash !== hash) {
      throw stale(`the store holds ${before.pendingHash} awaiting approval, this process sees ${hash}`);
    }
    const definition = definitionOf(tool);
    const seen: SeenDefinition = { hash, definition, inspection: inspectDefinition(definition) };
    const by = `operator:${input.operatorId}`;
    const now = this.clock.now();
    if (!(await this.pins.approve(key, seen, by, now))) {
      const after = await this.read(key);
      if (after?.status === 'approved' && after.approvedHash === hash) {
        return { view: this.view(tool), repeated: true };
      }
      throw stale(`the pin of ${publicName} changed while approving`);
    }
    try {
      await this.opts.audit.append({
        traceId: input.traceId,
        event: 'TOOL_PINNED',
        actorType: 'HUMAN',
        actorId: `operator:${input.operatorId}`,
        toolName: publicName,
        result: 'success',
        data: {
          upstream: key.upstream,
          tool: key.tool,
          hash,
          previousHash: before.approvedHash,
          previousStatus: before.status,
          by: 'operator',
          via: input.via ?? 'api',
          comment: input.comment ?? null,
          injectionScore: seen.inspection.score,
          signals: seen.inspection.signals,
        },
      });
    } catch (e) {
      // An approval nobody can account for does not stand: put the pin back as it was.
      await this.pins.restore(before, hash, now).catch(() => {});
      await this.read(key).catch(() => {});
      throw new WardenError('AUDIT_UNAVAILABLE', 'The approval could not be audited, so it was not made', {
        cause: e,
      });
    }
    await this.read(key).catch(() => {});
    this.recompute();
    this.log.info({ tool: publicName, hash, by }, 'tool definition approved');
    return { view: this.view(tool), repeated: false };
  }

  /** Re-reads the pins and settles every listed tool; concurrent calls share one run (plus one after it). */
  reconcile(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.reconcileOnce();
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async reconcileOnce(): Promise<void> {
    try {
      const rows = await this.pins.all();
      this.cache = new Map(rows.map((p) => [keyOf(p), p]));
      this.loaded = true;
    } catch (e) {
      if (this.loaded) this.log.error({ err: errText(e) }, 'tool pins unreadable: publishing no tools');
      this.loaded = false;
      this.recompute();
      return;
    }
    for (const tool of this.opts.pool.listTools()) {
      try {
        await this.settle(tool);
      } catch (e) {
        // The tool keeps whatever its last known pin says; a new or changed definition stays withheld.
        this.log.error({ err: errText(e), tool: tool.name }, 'could not record the tool definition');
      }
    }
    this.recompute();
  }

  /** Brings the store up to date with what `tool` looks like now (first sight, change). */
  private async settle(tool: AggregatedTool): Promise<void> {
    const key = pinKey(tool);
    const hash = toolHash(tool);
    // A guarded write that loses re-reads and looks again; three rounds cover any interleaving of two writers.
    for (let round = 0; round < 3; round++) {
      const pin = this.cache.get(keyOf(key));
      if (pin?.status === 'approved' ? pin.approvedHash === hash : pin?.pendingHash === hash) return;
      const definition = definitionOf(tool);
      const seen: SeenDefinition = { hash, definition, inspection: inspectDefinition(definition) };
      const now = this.clock.now();
      if (!pin) {
        const auto = this.opts.mode === 'auto' && !seen.inspection.flagged;
        if (await this.pins.insertIfAbsent(key, seen, now, auto ? AUTO : undefined)) {
          try {
            await this.firstSight(tool, seen, auto);
          } catch (e) {
            // Unaudited, the pin does not stand (least of all an automatic approval); the next round retries.
            await this.pins.forget(key, hash, now).catch(() => {});
            this.cache.delete(keyOf(key));
            throw e;
          }
        }
      } else if (pin.status === 'approved' && pin.approvedHash !== null) {
        if (await this.pins.quarantine(key, pin.approvedHash, seen, now)) {
          await this.changed(tool, pin, seen, pin.approvedHash);
        }
      } else if (pin.pendingHash !== null) {
        if (await this.pins.replacePending(key, pin.pendingHash, seen, now)) {
          await this.changed(tool, pin, seen, pin.pendingHash);
        }
      } else {
        return; // a row our writes never make (no hash to compare): stays withheld
      }
      await this.read(key);
    }
  }

  private async firstSight(tool: AggregatedTool, seen: SeenDefinition, auto: boolean): Promise<void> {
    const reason = auto ? null : seen.inspection.flagged ? 'injection' : 'operator-mode';
    if (reason === 'injection') {
      this.log.warn(
        { tool: tool.name, score: seen.inspection.score, signals: seen.inspection.signals },
        'new tool definition reads as an injection: withheld until an operator approves it',
      );
    }
    await this.opts.audit.append({
      traceId: randomId('pin'),
      event: auto ? 'TOOL_PINNED' : 'TOOL_PENDING',
      actorType: 'SYSTEM',
      actorId: 'pinning',
      toolName: tool.name,
      result: auto ? 'success' : 'pending',
      data: {
        upstream: tool.upstream,
        tool: tool.upstreamName,
        hash: seen.hash,
        ...(auto ? { by: 'auto' } : { reason }),
        injectionScore: seen.inspection.score,
        signals: seen.inspection.signals,
      },
    });
  }

  private async changed(tool: AggregatedTool, pin: ToolPin, seen: SeenDefinition, from: string) {
    this.log.warn(
      { tool: tool.name, upstream: tool.upstream, from, to: seen.hash, score: seen.inspection.score },
      'tool definition changed: quarantined until an operator re-approves it',
    );
    await this.opts.audit.append({
      traceId: randomId('pin'),
      event: 'TOOL_DEFINITION_CHANGED',
      actorType: 'SYSTEM',
      actorId: 'pinning',
      toolName: tool.name,
      result: 'denied',
      data: {
        upstream: tool.upstream,
        tool: tool.upstreamName,
        status: pin.status === 'approved' ? 'quarantined' : pin.status,
        previousHash: from,
        hash: seen.hash,
        approvedHash: pin.approvedHash,
        injectionScore: seen.inspection.score,
        signals: seen.inspection.signals,
      },
    });
  }

  /** Re-reads one pin into the cache. */
  private async read(key: PinKey): Promise<ToolPin | undefined> {
    const pin = await this.pins.get(key);
    if (pin) this.cache.set(keyOf(key), pin);
    else this.cache.delete(keyOf(key));
    return pin;
  }

  private stateOf(tool: AggregatedTool): ToolState {
    if (!this.loaded) return 'unverified';
    const pin = this.cache.get(keyOf(pinKey(tool)));
    if (!pin) return 'pending';
    if (pin.status === 'approved') return pin.approvedHash === toolHash(tool) ? 'approved' : 'quarantined';
    return pin.status;
  }

  private view(tool: AggregatedTool): ToolView {
    return {
      name: tool.name,
      upstream: tool.upstream,
      upstreamName: tool.upstreamName,
      state: this.stateOf(tool),
      hash: toolHash(tool),
      pin: this.cache.get(keyOf(pinKey(tool))),
    };
  }

  /** Publishes what is approved now; tells subscribers when that changed. */
  private recompute(): void {
    const published = this.opts.pool.listTools().filter((t) => this.stateOf(t) === 'approved');
    const signature = published.map((t) => `${t.name}\u0000${toolHash(t)}`).join('\n');
    this.published = published;
    this.byName = new Map(published.map((t) => [t.name, t]));
    if (signature === this.signature) return;
    this.signature = signature;
    for (const listener of this.listeners) {
      try {
        listener(this.listTools());
      } catch (e) {
        this.log.warn({ err: errText(e) }, 'tools-changed listener failed');
      }
    }
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
