/**
 * DNS-rebinding protection for the agent faces (MCP's transport rules: a
 * server MUST validate Origin). A page on evil.example that gets its name
 * re-pointed at 127.0.0.1 reaches the gateway with `Host: evil.example` and
 * `Origin: http://evil.example`; both are refused with 403 before anything
 * else runs. IP-literal hosts cannot be rebound (rebinding needs a name the
 * attacker controls), so they pass; names must be localhost, publicUrl's host
 * or listed in `server.allowedHosts`. A browser's Origin must be a loopback
 * origin, publicUrl's origin or listed in `server.allowedOrigins`.
 */
import { isIP } from 'node:net';
import type { ServerConfig } from '../config/types.js';
import { WardenError } from '../errors.js';

const LOOPBACK_NAMES = new Set(['localhost']);

/** The host name of a Host header value (port and IPv6 brackets removed), lower case; undefined if malformed. */
function hostName(value: string): string | undefined {
  const u = URL.parse(`http://${value}`);
  if (!u || u.username || u.password || u.pathname !== '/' || u.search || u.hash) return undefined;
  return u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || host.endsWith('.localhost') || host === '::1' || /^127\./.test(host);
}

/** Checks one request's Host and Origin headers; throws ORIGIN_NOT_ALLOWED. */
export type OriginGuard = (host: string | undefined, origin: string | undefined) => void;

export function originGuard(
  server: Pick<ServerConfig, 'publicUrl' | 'allowedHosts' | 'allowedOrigins'>,
): OriginGuard {
  const publicUrl = new URL(server.publicUrl);
  const hosts = new Set([
    publicUrl.hostname.replace(/^\[|\]$/g, '').toLowerCase(),
    ...(server.allowedHosts ?? []),
  ]);
  const origins = new Set([publicUrl.origin.toLowerCase(), ...(server.allowedOrigins ?? [])]);
  return (hostHeader, originHeader) => {
    if (hostHeader !== undefined) {
      const host = hostName(hostHeader);
      if (host === undefined || !(isIP(host) !== 0 || isLoopback(host) || hosts.has(host))) {
        throw new WardenError('ORIGIN_NOT_ALLOWED', 'This host name is not served here', {
          rule: 'request.host',
          detail: `Host header ${JSON.stringify(hostHeader.slice(0, 200))} is not an IP, localhost, the public URL's host or in server.allowedHosts`,
        });
      }
    }
    // "null" (opaque origins: sandboxed frames, file:) is a browser too: refused like any unknown origin.
    if (originHeader !== undefined) {
      const u = URL.parse(originHeader);
      const origin = u?.origin.toLowerCase();
      const host = u?.hostname.replace(/^\[|\]$/g, '').toLowerCase();
      const ok =
        origin !== undefined &&
        origin !== 'null' &&
        (origins.has(origin) || (host !== undefined && isLoopback(host)));
      if (!ok) {
        throw new WardenError('ORIGIN_NOT_ALLOWED', 'Requests from this origin are not accepted', {
          rule: 'request.origin',
          detail: `Origin ${JSON.stringify(originHeader.slice(0, 200))} is not a loopback origin, the public URL's or in server.allowedOrigins`,
        });
      }
    }
  };
}
