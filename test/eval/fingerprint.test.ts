import { describe, expect, it } from 'vitest';
import { fingerprint, generatedTexts } from '../../scripts/eval/fingerprint.js';

describe('detector fingerprint (npm run eval:detectors -- --fingerprint)', () => {
  it('is the same for the same texts, and differs when one text does', async () => {
    const texts = generatedTexts(60);
    expect(generatedTexts(60)).toEqual(texts);
    const a = await fingerprint(texts);
    expect(a).toEqual(await fingerprint(generatedTexts(60)));
    expect(a.texts).toBe(60);
    expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
    // A card number appended to one text: its PII findings change, and with them the fingerprint.
    const changed = [...texts.slice(0, -1), `${texts.at(-1)} 4111 1111 1111 1111`];
    expect((await fingerprint(changed)).sha256).not.toBe(a.sha256);
  });
});
