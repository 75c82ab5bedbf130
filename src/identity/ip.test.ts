import { describe, expect, it } from 'vitest';
import { ipInRanges } from './ip.js';

describe('ipInRanges', () => {
  it('matches IPv4, IPv6 and IPv4-mapped addresses against their ranges, the same way every time', () => {
    for (let round = 0; round < 2; round++) {
      expect(ipInRanges('10.1.2.3', ['10.0.0.0/8'])).toBe(true);
      expect(ipInRanges('11.1.2.3', ['10.0.0.0/8'])).toBe(false);
      expect(ipInRanges('::ffff:127.0.0.1', ['127.0.0.0/8'])).toBe(true);
      expect(ipInRanges('::1', ['127.0.0.0/8', '::1/128'])).toBe(true);
      expect(ipInRanges('2001:db8::1', ['127.0.0.0/8', '::1/128'])).toBe(false);
    }
  });

  it('an empty list admits anyone; an unparsable range or address matches nothing', () => {
    expect(ipInRanges('203.0.113.9', [])).toBe(true);
    expect(ipInRanges('10.1.2.3', ['10.0.0.0/99', 'nonsense'])).toBe(false);
    expect(ipInRanges('10.1.2.3', ['nonsense', '10.0.0.0/8'])).toBe(true);
    expect(ipInRanges('not-an-ip', ['0.0.0.0/0'])).toBe(false);
  });
});
