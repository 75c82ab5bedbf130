/** The upstream pool: Warden's MCP client side (stdio and Streamable HTTP upstreams). */
export { COLLISION_SEPARATOR, prefixedName } from './aggregate.js';
export { UpstreamPool } from './pool.js';
export { type Downstream, type RelayRecord, SessionUpstreams } from './session.js';
export type {
  AggregatedTool,
  CallToolOptions,
  PoolLogger,
  ReconnectOptions,
  SecretResolver,
  SessionScope,
  UpstreamPoolOptions,
  UpstreamProgress,
  UpstreamState,
  UpstreamStatus,
} from './types.js';
export { authorizationRequired, type PendingConnect, UserOAuth } from './user-oauth.js';
export { decodeTokenKey, type UpstreamTokenSet, UpstreamTokenVault } from './user-tokens.js';
