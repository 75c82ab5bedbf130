/**
 * Builds the SDK client transport of one upstream, with its credentials
 * brokered by Warden: secret env for a stdio child (resolved at spawn), secret
 * headers for Streamable HTTP (resolved per request). Nothing from the agent's
 * request is ever forwarded: the transport only knows the upstream's config.
 */
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { DEFAULTS } from '../config/constants.js';
import type { HttpUpstreamConfig, StdioUpstreamConfig, UpstreamConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { nodeFetch } from './node-fetch.js';
import { OAuthCredential } from './oauth-credentials.js';
import { perRequestSignals } from './request-signals.js';
import { responseGuard } from './response-guard.js';
import { SerialSendTransport } from './serial-transport.js';
import { withTraceparent } from './trace-headers.js';
import type { PoolLogger, SecretResolver } from './types.js';

/** Lines of a child's stderr kept to explain a crash in the logs. */
const STDERR_TAIL_LINES = 20;

export interface UpstreamTransport {
  transport: Transport;
  /** Last lines the child wrote to stderr (stdio only). */
  stderrTail(): string[];
}

/** Creates (but does not start) the transport for `config`. */
export async function createUpstreamTransport(
  config: UpstreamConfig,
  resolveSecret: SecretResolver,
  logger: PoolLogger,
  /** HTTP: a per-connection bearer token source (a user's own token) instead of config.credentials.oauth. */
  bearer?: (stale?: string) => Promise<string>,
): Promise<UpstreamTransport> {
  return config.transport === 'stdio'
    ? createStdioTransport(config, resolveSecret, logger)
    : { transport: createHttpTransport(config, resolveSecret, logger, bearer), stderrTail: () => [] };
}

async function resolveOrFail(
  resolveSecret: SecretResolver,
  ref: Parameters<SecretResolver>[0],
  what: string,
) {
  try {
    return await resolveSecret(ref);
  } catch (e) {
    // The ref names where the secret lives (an env var or file name), never its value.
    throw new WardenError('UPSTREAM_UNAVAILABLE', 'Upstream unavailable', {
      detail: `cannot resolve ${what}: ${e instanceof Error ? e.message : String(e)}`,
      cause: e,
    });
  }
}

async function createStdioTransport(
  config: StdioUpstreamConfig,
  resolveSecret: SecretResolver,
  logger: PoolLogger,
): Promise<UpstreamTransport> {
  const secrets: Record<string, string> = {};
  for (const [name, ref] of Object.entries(config.credentials.env)) {
    secrets[name] = await resolveOrFail(
      resolveSecret,
      ref,
      `credential env ${name} of upstream ${config.name}`,
    );
  }
  // The child gets the SDK's short safe list (PATH, HOME, …), its configured env and its
  // own credentials — never Warden's whole environment, which holds Warden's own secrets.
  const env = { ...getDefaultEnvironment(), ...config.env, ...secrets };
  const stdio = new StdioClientTransport({
    command: config.command,
    args: config.args,
    env,
    ...(config.cwd === undefined ? {} : { cwd: config.cwd }),
    stderr: 'pipe',
  });

  const tail: string[] = [];
  let partial = '';
  // Must be consumed: an unread stderr pipe fills up and blocks the child.
  stdio.stderr?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    if (partial.length > 4096) partial = partial.slice(0, 4096);
    for (const raw of lines) {
      const line = raw.length > 1000 ? `${raw.slice(0, 1000)}…` : raw;
      tail.push(line);
      if (tail.length > STDERR_TAIL_LINES) tail.shift();
      logger.debug?.({ upstream: config.name, stderr: line }, 'upstream stderr');
    }
  });

  return {
    transport: new SerialSendTransport(stdio),
    stderrTail: () => [...tail, ...(partial ? [partial] : [])],
  };
}

/** A per-connection token source as a credential: a token the upstream refused is refreshed, not re-read. */
function bearerCredential(bearer: (stale?: string) => Promise<string>) {
  let stale: string | undefined;
  return {
    token: () => {
      const refused = stale;
      stale = undefined;
      return bearer(refused);
    },
    invalidate: (token: string) => {
      stale = token;
    },
  };
}

function createHttpTransport(
  config: HttpUpstreamConfig,
  resolveSecret: SecretResolver,
  logger: PoolLogger,
  bearer?: (stale?: string) => Promise<string>,
): Transport {
  const headers = Object.entries(config.credentials.headers);
  const oauth = bearer
    ? bearerCredential(bearer)
    : config.credentials.oauth
      ? new OAuthCredential(config.name, config.credentials.oauth, resolveSecret)
      : undefined;
  // Resolved per request, so a rotated secret is picked up without a reconnect.
  const withHeaders = async (init: RequestInit | undefined, token: string | undefined) => {
    const h = new Headers(init?.headers);
    for (const [name, ref] of headers) {
      const value = await resolveOrFail(
        resolveSecret,
        ref,
        `credential header ${name} of upstream ${config.name}`,
      );
      h.set(name, `${ref.prefix ?? ''}${value}`);
    }
    if (token !== undefined) h.set('Authorization', `Bearer ${token}`);
    return { ...init, headers: h };
  };
  // POSTs (every tools/call) go over node:http, the rest through the global fetch: node-fetch.ts.
  const base = nodeFetch();
  const withCredentials: FetchLike = async (url, init) => {
    if (headers.length === 0 && !oauth) return base(url, init);
    const token = await oauth?.token();
    const res = await base(url, await withHeaders(init, token));
    // A brokered token the upstream refuses (revoked, rotated early) is fetched anew, once.
    // Requests the SDK sends carry string bodies, so resending is safe; a stream body is not retried.
    if (
      res.status === 401 &&
      oauth &&
      token !== undefined &&
      (init?.body === undefined || typeof init.body === 'string')
    ) {
      oauth.invalidate(token);
      await res.body?.cancel().catch(() => {});
      return base(url, await withHeaders(init, await oauth.token()));
    }
    return res;
  };
  // What comes back on each request's own response is checked before the SDK sees it: answers
  // for other requests dropped, size bounded, cancelled requests cut (response-guard.ts).
  const guarded = responseGuard(withTraceparent(withCredentials), {
    upstream: config.name,
    maxResultBytes: config.maxResultBytes ?? DEFAULTS.upstreamMaxResultBytes,
    logger,
  });
  // The SDK's default redirect policy (same origin only) keeps the credentials from
  // following a redirect to another host.
  return new StreamableHTTPClientTransport(new URL(config.url), {
    fetch: perRequestSignals(guarded),
  });
}
