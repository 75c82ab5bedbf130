import ipaddr from 'ipaddr.js';

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number] | null;

/** Parsed CIDRs by text (null = unparsable, never matches); the set in use is small and fixed by config. */
const ranges = new Map<string, Range>();
const MAX_RANGES = 10_000;

function rangeOf(cidr: string): Range {
  let r = ranges.get(cidr);
  if (r === undefined) {
    try {
      r = ipaddr.parseCIDR(cidr);
    } catch {
      r = null;
    }
    if (ranges.size >= MAX_RANGES) ranges.clear();
    ranges.set(cidr, r);
  }
  return r;
}

/** True when `ip` lies in one of `cidrs` ([] = any address); IPv4-mapped IPv6 addresses compare as IPv4. */
export function ipInRanges(ip: string, cidrs: readonly string[]): boolean {
  if (cidrs.length === 0) return true;
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(ip);
  } catch {
    return false;
  }
  return cidrs.some((cidr) => {
    const range = rangeOf(cidr);
    return range !== null && addr.kind() === range[0].kind() && addr.match(range);
  });
}
