/**
 * The pin store on both dialects: every write is guarded by the state it leaves, so two
 * gateway processes racing on the same tool produce exactly one winner.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import type { Store } from '../store/index.js';
import type { ToolDefinition } from './hash.js';
import { definitionHash } from './hash.js';
import { inspectDefinition } from './inspect.js';
import { PinStore, type SeenDefinition } from './pins.js';

const seen = (description: string): SeenDefinition => {
  const definition: ToolDefinition = { name: 'echo', description, inputSchema: { type: 'object' } };
  return { hash: definitionHash(definition), definition, inspection: inspectDefinition(definition) };
};

describeEachDialect('PinStore', (target) => {
  let a: Store;
  let b: Store;
  let n = 0;
  const key = () => ({ upstream: 'fx', tool: `t${++n}` });

  beforeAll(async () => {
    a = await target.open();
    b = await target.open(); // a second process on the same database
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await target.cleanup();
  });

  it('inserts a first sight once: the first writer wins, the other reads it', async () => {
    const k = key();
    const v1 = seen('one');
    const v2 = seen('two');
    const results = await Promise.all([
      new PinStore(a).insertIfAbsent(k, v1, 1000, 'system:auto'),
      new PinStore(b).insertIfAbsent(k, v2, 1001),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const pin = await new PinStore(b).get(k);
    expect(pin).toBeDefined();
    if (results[0]) {
      expect(pin).toMatchObject({ status: 'approved', approvedHash: v1.hash, approvedBy: 'system:auto' });
    } else {
      expect(pin).toMatchObject({ status: 'pending', pendingHash: v2.hash, approvedHash: null });
    }
    expect((await new PinStore(a).all()).filter((p) => p.tool === k.tool)).toHaveLength(1);
  });

  it('quarantines an approved pin once, and only from the hash it was approved at', async () => {
    const k = key();
    const pins = new PinStore(a);
    const v1 = seen('one');
    await pins.insertIfAbsent(k, v1, 1000, 'system:auto');
    expect(await pins.quarantine(k, 'f'.repeat(64), seen('two'), 2000)).toBe(false);
    const raced = await Promise.all([
      pins.quarantine(k, v1.hash, seen('two'), 2000),
      new PinStore(b).quarantine(k, v1.hash, seen('three'), 2001),
    ]);
    expect(raced.filter(Boolean)).toHaveLength(1);
    const pin = await pins.get(k);
    expect(pin).toMatchObject({
      status: 'quarantined',
      approvedHash: v1.hash,
      approvedDefinition: v1.definition,
    });
    expect([seen('two').hash, seen('three').hash]).toContain(pin?.pendingHash);
  });

  it('approves only the definition that is still pending, and can restore what was', async () => {
    const k = key();
    const pins = new PinStore(a);
    const v1 = seen('one');
    const v2 = seen('two');
    await pins.insertIfAbsent(k, v1, 1000);
    expect(await pins.replacePending(k, v1.hash, v2, 1500)).toBe(true);
    expect(await pins.approve(k, v1, 'operator:root', 2000)).toBe(false);
    const before = (await pins.get(k))!;
    expect(await pins.approve(k, v2, 'operator:root', 2000)).toBe(true);
    expect(await pins.get(k)).toMatchObject({
      status: 'approved',
      approvedHash: v2.hash,
      approvedBy: 'operator:root',
      approvedAt: 2000,
      pendingHash: null,
    });
    expect(await pins.approve(k, v2, 'operator:root', 2001)).toBe(false); // approved already
    expect(await pins.restore(before, v2.hash, 2000)).toBe(true);
    expect(await pins.get(k)).toEqual(before);
  });

  it('forgets only the first sight it recorded', async () => {
    const k = key();
    const pins = new PinStore(a);
    const v1 = seen('one');
    await pins.insertIfAbsent(k, v1, 1000, 'system:auto');
    expect(await pins.forget(k, v1.hash, 999)).toBe(false);
    expect(await pins.forget(k, seen('two').hash, 1000)).toBe(false);
    expect(await pins.forget(k, v1.hash, 1000)).toBe(true);
    expect(await pins.get(k)).toBeUndefined();
  });
});
