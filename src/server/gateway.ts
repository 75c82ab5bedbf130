/**
 * The composition root: opens the store, wires identity, OAuth, upstreams, the
 * pipeline and the faces, and serves them on one HTTP listener.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { ApprovalService, OperatorTokens } from '../approvals/index.js';
import {
  AuditHealth,
  type AuditLog,
  AuditSinks,
  Checkpointer,
  loadCheckpointSigner,
  MerkleTree,
} from '../audit/index.js';
import { loadConfig, resolveSecret } from '../config/index.js';
import type { WardenConfig } from '../config/types.js';
import {
  type AgentRegistry,
  type KeyManager,
  type SessionStore,
  SubjectTokenVerifier,
  type TokenService,
} from '../identity/index.js';
import { type Limiter, openLimiter } from '../limits/index.js';
import { Metrics, timedAppends } from '../metrics/index.js';
import {
  AnomalyMonitor,
  type Breakers,
  breakersFor,
  gatewayResponder,
  InFlightCalls,
  KillBus,
  KillSwitch,
} from '../monitor/index.js';
import { createNotifications } from '../notify/index.js';
import { createAuthorizationServer, protectedResourceMetadata } from '../oauth/index.js';
import { PinnedTools } from '../pins/index.js';
import { AccessGate } from '../pipeline/access.js';
import {
  auditedVerify,
  createPipeline,
  type Pipeline,
  patchChecker,
  pipelineDepsFor,
} from '../pipeline/index.js';
import { createPolicyEngine, type PolicyEngine } from '../policy/index.js';
import type { Store } from '../store/index.js';
import { startTracing, withIncomingTraceparent } from '../tracing/index.js';
import { UpstreamPool } from '../upstream/index.js';
import { type Clock, systemClock } from '../util/clock.js';
import { VERSION } from '../version.js';
import { mountAdmin } from './admin.js';
import { AuditStreams } from './admin-audit-stream.js';
import { createApp } from './app.js';
import { buildClassifier } from './classifier.js';
import { delegationDeps, perUserCredentials } from './delegation.js';
import { createLogger, type Logger } from './logger.js';
import { McpFace } from './mcp.js';
import { originGuard } from './origin-guard.js';
import { restToolCalls } from './rest.js';
import { openServices, syncAgents } from './services.js';

export interface GatewayOptions {
  clock?: Clock;
  /** PostgreSQL schema (tests). */
  pgSchema?: string;
  /** SQLite busy timeout in ms (tests of lock outages; default 5 s). */
  sqliteBusyTimeoutMs?: number;
  /** Operator log; default pino on stderr at config.log.level. */
  logger?: Logger;
  /** Replaces the fetch for OAuth client metadata documents (tests: an https server with a private CA). */
  oauthFetch?: typeof fetch;
  /** Replaces the fetch Warden's per-user upstream OAuth client uses (tests). */
  upstreamFetch?: typeof fetch;
}

/** A running gateway and the parts tests and the CLI reach into. */
export interface Gateway {
  url: string;
  config: WardenConfig;
  store: Store;
  audit: AuditLog;
  agents: AgentRegistry;
  sessions: SessionStore;
  keys: KeyManager;
  tokens: TokenService;
  pool: UpstreamPool;
  /** The pool as agents see it: pinned, unchanged tool definitions only (issue #7). */
  pins: PinnedTools;
  limiter: Limiter;
  /** The Cedar engine; `policy.reload()` is what SIGHUP calls. */
  policy: PolicyEngine;
  pipeline: Pipeline;
  mcp: McpFace;
  metrics: Metrics;
  approvals: ApprovalService;
  operatorTokens: OperatorTokens;
  /** The kill switch (issue #8) and the calls it can reach in this process. */
  kill: KillSwitch;
  inFlight: InFlightCalls;
  /** Baselines and anomalies (issue #8); `tick()` processes new audit entries now. */
  anomalies: AnomalyMonitor;
  /** Circuit breakers per session and agent (issue #8): reset and status for operators. */
  breakers: Breakers;
  /** The audit log's Merkle tree and its signed checkpoints (issue #9). */
  tree: MerkleTree;
  checkpoints: Checkpointer;
  /** Audit webhook sinks and SSE streams for SIEMs (issue #9). */
  auditSinks: AuditSinks;
  auditStreams: AuditStreams;
  close(): Promise<void>;
}

/** Start a gateway for `config`; listens before resolving. Port 0 picks a free port (publicUrl follows it). */
export async function startGateway(config: WardenConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.log.level);

  // Listen first so that port 0 resolves before the issuer and audience (which embed the URL) are fixed.
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server: Server = createServer({ maxHeaderSize: config.server.headerLimitBytes }, (req, res) => {
    if (handler) return handler(req, res);
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end(JSON.stringify({ error: { code: 'UPSTREAM_UNAVAILABLE', message: 'Starting', traceId: '' } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const publicUrl =
    config.server.port === 0
      ? `http://${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${port}`
      : config.server.publicUrl.replace(/\/+$/, '');

  const closers: Array<() => Promise<void>> = [() => new Promise<void>((r) => server.close(() => r()))];
  // Before connections are cut: callers held for a human are answered (still pending, with the id to retry).
  let beforeClose: (() => Promise<void>) | undefined;
  const close = async () => {
    await beforeClose?.().catch(() => {});
    server.closeAllConnections?.();
    for (const c of closers.reverse()) await c().catch(() => {});
  };

  try {
    // First: a gateway told to trace that cannot load the SDK fails before it opens anything.
    // Closed last (closers run in reverse), so the spans of the last calls are exported.
    const tracing = await startTracing(config.tracing);
    if (tracing) closers.push(() => tracing.close());
    const services = await openServices(config, {
      clock,
      publicUrl,
      ...(options.pgSchema ? { pgSchema: options.pgSchema } : {}),
      ...(options.sqliteBusyTimeoutMs === undefined
        ? {}
        : { sqliteBusyTimeoutMs: options.sqliteBusyTimeoutMs }),
    });
    const { store, audit, agents, sessions, keys, tokens } = services;
    closers.push(() => store.close());
    // Runs just before the store closes: outcome entries still held in memory get a last try.
    closers.push(() => audit.retryRetained());
    await syncAgents(services, config);
    await keys.init();
    const subjectTokens = new SubjectTokenVerifier(config.identityProviders, {
      defaultAudience: services.audience,
      clock,
      clockSkewMs: config.tokens.clockSkewMs,
    });
    // Built before the authorization server: the account page lists per-user upstream accounts.
    const pool = new UpstreamPool(config.upstreams, {
      resolveSecret: (ref) => resolveSecret(ref),
      logger: logger.child({ component: 'upstream' }),
      ...perUserCredentials(config, {
        store,
        clock,
        ...(options.upstreamFetch ? { fetch: options.upstreamFetch } : {}),
      }),
    });
    closers.push(() => pool.close());
    const delegation = {
      ...delegationDeps(config, { store, sessions, clock, audit }),
      ...(options.oauthFetch ? { fetch: options.oauthFetch } : {}),
      upstreamAccounts: pool,
    };
    const oauth = await createAuthorizationServer({
      store,
      agents,
      sessions,
      keys,
      tokens,
      subjectTokens,
      delegation,
      onServerError: (e) => logger.error({ err: e }, 'authorization server error'),
      config: {
        issuer: services.issuer,
        audience: services.audience,
        publicUrl,
        tokens: config.tokens,
        trustProxy: config.server.trustProxy,
      },
      // oidc-provider checks times against Date.now() itself: it gets the real clock, always.
    });
    closers.push(() => oauth.close());
    await pool.start();
    // Agents see (and call) only tools whose definitions are pinned and unchanged (issue #7).
    const pins = new PinnedTools({
      pool,
      store,
      audit,
      mode: config.pinning.mode,
      clock,
      log: logger.child({ component: 'pinning' }),
    });
    await pins.start();
    closers.push(() => pins.close());

    const limiter = await openLimiter(config.limits, {
      costOf: (tool) => (Object.hasOwn(config.tools, tool) ? (config.tools[tool]?.cost ?? 0) : 0),
      log: logger.child({ component: 'limits' }),
      clock,
    });
    closers.push(() => limiter.close());

    // After the upstreams start, so policies naming a tool can be checked against the real tool list.
    const source = config.source;
    const policy = await createPolicyEngine({
      policy: config.policy,
      tools: config.tools,
      taint: config.taint,
      inspectArguments: config.inspection.arguments,
      knownTools: () => ({
        names: new Set([...Object.keys(config.tools), ...pool.listTools().map((t) => t.name)]),
        complete: pool.status().every((u) => u.state === 'up'),
      }),
      // A reload re-reads the policy section of the config file too; tools and agents need a restart.
      ...(source === null
        ? {}
        : { reloadPolicy: async () => (await loadConfig(source)).config.policy, watchFiles: [source] }),
      audit: (input) => audit.append(input),
      logger: logger.child({ component: 'policy' }),
      clock,
    });
    closers.push(async () => policy.close());

    const toolConfig = (tool: string) => (Object.hasOwn(config.tools, tool) ? config.tools[tool] : undefined);
    const notifications = createNotifications({
      store,
      config: config.notifiers,
      operators: config.operators,
      clock,
      log: logger.child({ component: 'notify' }),
      audit: (input) => audit.append(input),
    });
    notifications.start();
    closers.push(() => notifications.close());
    const approvals = new ApprovalService({
      store,
      audit,
      notifier: notifications,
      config: config.approvals,
      operators: config.operators,
      toolConfig,
      checkPatch: patchChecker({
        tools: () => pins.listTools(),
        toolConfig,
        maxJsonDepth: config.server.maxJsonDepth,
      }),
      clock,
      log: logger.child({ component: 'approvals' }),
    });
    approvals.start();
    beforeClose = async () => {
      approvals.close();
      const deadline = Date.now() + 2_000;
      while (approvals.waiting > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // Let the woken calls write their answers.
      await new Promise((r) => setTimeout(r, 300));
    };
    const operatorTokens = new OperatorTokens({
      keys,
      issuer: services.issuer,
      audience: `${services.audience}/admin`,
      operators: config.operators,
      clock,
      clockSkewMs: config.tokens.clockSkewMs,
      ...(subjectTokens.enabled ? { identity: subjectTokens } : {}),
    });

    const metrics = new Metrics({ clock });
    // Read on scrape, cached briefly: a scrape storm does not become a store storm.
    metrics.collectApprovalsPending(() => approvals.pendingCount());
    // The kill switch (issue #8): calls running here, and how kills reach the other processes.
    const inFlight = new InFlightCalls(() => clock.now());
    const killLog = logger.child({ component: 'kill-switch' });
    const killBus = config.limits.redisUrl
      ? new KillBus({
          url: config.limits.redisUrl,
          namespace: config.limits.namespace ?? 'warden',
          log: killLog,
        })
      : undefined;
    let mcpRef: McpFace | undefined;
    const kill = new KillSwitch({
      agents,
      sessions,
      audit,
      inFlight,
      approvals,
      ...(killBus ? { bus: killBus } : {}),
      closeMcp: {
        forAgent: async (id) => (mcpRef ? mcpRef.closeForAgent(id) : 0),
        forSession: async (id) => (mcpRef ? mcpRef.closeForAgentSession(id) : 0),
      },
      alert: (a) => notifications.alert(a),
      metrics,
      clock,
      log: killLog,
    });
    await kill.start();
    closers.push(() => kill.close());
    // Baselines and anomalies (issue #8), learned from the audit log in the background.
    const anomalies = new AnomalyMonitor({
      store,
      audit,
      config: config.monitoring,
      clock,
      log: logger.child({ component: 'monitoring' }),
      respond: gatewayResponder({ sessions, kill, alert: (a) => notifications.alert(a) }),
      metrics,
    });
    if (config.monitoring.enabled) anomalies.start();
    closers.push(() => anomalies.close());
    // Tamper evidence (issue #9): the Merkle tree built in the background, signed checkpoints.
    const tree = new MerkleTree(store, { clock });
    const checkpointSigner = await loadCheckpointSigner(config.audit.checkpoints.signingKey);
    const checkpoints = new Checkpointer({
      store,
      tree,
      signer: checkpointSigner,
      config: config.audit.checkpoints,
      clock,
      log: logger.child({ component: 'audit' }),
      alert: (a) => notifications.alert(a),
    });
    checkpoints.start();
    metrics.collectAuditTree(
      () => checkpoints.status(),
      () => clock.now(),
    );
    closers.push(() => checkpoints.close());
    // Fail closed and recover (issue #9): the audit store's health, alerts, the writable gauge.
    const auditHealth = new AuditHealth({
      probe: () => audit.probe(),
      recovered: () => void audit.retryRetained(),
      retained: () => audit.retained,
      alert: (a) => notifications.alert(a),
      dropped: (n, reason) => metrics.auditDropped(n, reason),
      log: logger.child({ component: 'audit' }),
      clock,
    });
    const unobserve = audit.observe(auditHealth);
    closers.push(async () => {
      unobserve();
      auditHealth.close();
    });
    metrics.collectAuditHealth(() => ({ writable: auditHealth.writable, retained: audit.retained }));
    // Streaming to SIEMs (issue #9): webhook sinks (at least once, one replica per sink at a time)
    // and SSE streams; both poll the store and wake at once after a commit in this process.
    const onCommit = (listener: () => void) => audit.observe({ committed: () => listener() });
    const auditSinks = new AuditSinks({
      store,
      sinks: config.audit.sinks.webhooks,
      subscribe: onCommit,
      alert: (a) => notifications.alert(a),
      metrics,
      clock,
      log: logger.child({ component: 'audit-sinks' }),
    });
    auditSinks.start();
    closers.push(() => auditSinks.close());
    const auditStreams = new AuditStreams({ store, subscribe: onCommit });
    // Before connections are cut: open streams end after their last whole event.
    const closeApprovals = beforeClose;
    beforeClose = async () => {
      await auditStreams.close();
      await closeApprovals?.();
    };
    if (store.dialect === 'postgres' && config.audit.hmac.key.generate) {
      logger.warn(
        { key: config.audit.hmac.key.ref },
        "audit values are keyed with an HMAC key created in this replica's data directory: give every replica the same audit.hmac.key, or the same value gets a different HMAC on each and warden audit hmac finds only some",
      );
    }
    if (store.dialect === 'postgres' && config.audit.checkpoints.signingKey.generate) {
      logger.warn(
        { key: config.audit.checkpoints.signingKey.ref },
        "audit checkpoints are signed with a key created in this replica's data directory: give every replica the same audit.checkpoints.signingKey (or list the others' public keys in trustedKeys) so warden audit verify trusts them all",
      );
    }
    const breakers = breakersFor(config, {
      store,
      audit,
      clock,
      alert: (a) => notifications.alert(a),
      log: logger.child({ component: 'breakers' }),
      metrics,
    });
    metrics.collectOpenBreakers(() => breakers.openCounts());
    const pipelineDeps = pipelineDepsFor(config, {
      breakers,
      inFlight,
      approvals,
      tokens,
      sessions,
      tools: pins,
      // The pipeline's appends (attempt, denial, outcome) timed into warden_audit_append_seconds.
      audit: timedAppends(audit, metrics),
      auditHmac: services.hmac,
      auditHealth,
      clock,
      limiter,
      policy,
      metrics,
      ...(tracing ? { tracer: tracing.tracer } : {}),
      log: logger.child({ component: 'pipeline' }),
      alert: (a) => notifications.alert(a),
      ...(config.inspection.classifier
        ? { classifier: await buildClassifier(config.inspection.classifier) }
        : {}),
    });
    const pipeline = createPipeline(pipelineDeps);
    const resourceMetadataUrl = `${publicUrl}/.well-known/oauth-protected-resource`;
    // Resources and prompts under the same policy, inspection and audit log as calls (issue #10).
    const access = new AccessGate({
      source: pool,
      policy,
      audit: pipelineDeps.audit,
      sessions,
      ...(pipelineDeps.inspection ? { inspection: pipelineDeps.inspection } : {}),
      clock,
    });
    const mcp = new McpFace({
      pipeline,
      verify: auditedVerify(pipelineDeps),
      tools: () => pins.listTools(),
      riskOf: pipelineDeps.riskOf,
      audit: (input) => audit.append(input),
      clock,
      bodyLimitBytes: config.server.bodyLimitBytes,
      maxJsonDepth: config.server.maxJsonDepth,
      trustProxy: config.server.trustProxy,
      resourceMetadataUrl,
      version: VERSION,
      logger: logger.child({ component: 'mcp' }),
      upstreams: pool,
      access,
    });
    closers.push(() => mcp.close());
    pool.onResourceUpdated((uri) => mcp.resourceUpdated(uri));
    pool.onCatalogChanged((kinds) => mcp.catalogChanged(kinds));
    mcpRef = mcp;
    pins.onToolsChanged(() => mcp.toolsChanged());
    const app = createApp({
      mcp,
      logger,
      originGuard: originGuard(config.server),
      mount: (a) => {
        const slack = notifications.slackInteractions(approvals.decideFromChat);
        if (slack) a.post('/notify/slack/interactions', (c) => slack(c.req.raw));
        mountAdmin(a, {
          approvals,
          grants: delegation.grants,
          pins,
          monitor: { agents, sessions, kill, inFlight, audit, breakers, anomalies, now: () => clock.now() },
          tamperEvidence: { store, tree, checkpoints, signer: checkpointSigner },
          auditHmac: { store, hmac: services.hmac, audit },
          auditStream: auditStreams,
          operators: operatorTokens,
          verifyAgent: auditedVerify(pipelineDeps),
          audit: (input) => audit.append(input),
          bodyLimitBytes: config.server.bodyLimitBytes,
          maxJsonDepth: config.server.maxJsonDepth,
          trustProxy: config.server.trustProxy,
        });
      },
      ...(config.server.metrics ? { metrics } : {}),
      toolCalls: restToolCalls({
        pipeline,
        bodyLimitBytes: config.server.bodyLimitBytes,
        maxJsonDepth: config.server.maxJsonDepth,
        trustProxy: config.server.trustProxy,
        resourceMetadataUrl,
      }),
      protectedResource: () =>
        protectedResourceMetadata({ issuer: services.issuer, audience: services.audience }),
      authorizationServer: () => oauth.metadata(),
      readiness: async () => {
        // An unwritable audit log refuses every call: take the replica out of rotation.
        if (!auditHealth.writable) {
          const h = auditHealth.status();
          return {
            ready: false,
            audit: { writable: false, since: new Date(h.downSince ?? 0).toISOString() },
          };
        }
        const head = await audit.head();
        const upstreams = pool.status();
        const limits = limiter.status();
        return {
          // A replica whose limits store is down refuses every call (deny mode): take it out of rotation.
          ready:
            (upstreams.some((u) => u.state === 'up') || upstreams.length === 0) &&
            (limits.up || limits.onStoreDown === 'allow'),
          limits: { store: limits.store, up: limits.up },
          store: store.description,
          auditHead: head.seq,
          // lastError is for operators (admin API, logs), not for an unauthenticated probe.
          upstreams: upstreams.map(({ name, state, tools }) => ({ name, state, tools })),
        };
      },
    });
    const honoListener = getRequestListener(app.fetch);
    const route = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/oauth' || req.url?.startsWith('/oauth/')) return oauth.handle(req, res);
      return honoListener(req, res);
    };
    // Tracing on: the caller's traceparent is kept in view so a call's span can be its child.
    handler = tracing
      ? (req, res) => withIncomingTraceparent(req.headers.traceparent, () => route(req, res))
      : route;
    logger.info({ url: publicUrl, store: store.description, version: VERSION }, 'gateway listening');
    return {
      url: publicUrl,
      config,
      store,
      audit,
      agents,
      sessions,
      keys,
      tokens,
      pool,
      pins,
      limiter,
      policy,
      pipeline,
      mcp,
      metrics,
      approvals,
      operatorTokens,
      kill,
      inFlight,
      anomalies,
      breakers,
      tree,
      checkpoints,
      auditSinks,
      auditStreams,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
