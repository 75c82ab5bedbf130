import ipaddr from 'ipaddr.js';

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
    try {
      const [range, bits] = ipaddr.parseCIDR(cidr);
      return addr.kind() === range.kind() && addr.match(range, bits);
    } catch {
      return false;
    }
  });
}
