/**
 * The pages a person sees at Warden's authorization server: log in (a
 * password from the embedded user store, or an external identity provider),
 * consent (this client, acting as this agent, for you, with these scopes),
 * and the account page where users list and revoke what they granted.
 *
 * Every form is protected twice against cross-site requests: a double-submit
 * token (a SameSite=Strict cookie that must equal a hidden field) and the
 * browser's own Origin / Sec-Fetch-Site headers, which must say "this site".
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { ClientLike, InteractionDetails } from 'oidc-provider';
import type { AuditInput } from '../audit/index.js';
import type { OAuthConfig } from '../config/types.js';
import { isWardenError } from '../errors.js';
import type { Agent, AgentRegistry } from '../identity/index.js';
import type { Store } from '../store/index.js';
import type { PendingConnect, UserOAuth } from '../upstream/index.js';
import { type Clock, randomId, systemClock } from '../util/clock.js';
import { clientKind, eligibleAgents, offerFor, redirectHost, type UserDirectory } from './delegated.js';
import type { UserGrant, UserGrants } from './grants.js';
import { csrfField, describeScope, esc, formTarget, type Page, sendPage } from './pages.js';

/** Password logins against the embedded user store. */
export interface PasswordLogin {
  /** Throws a WardenError `LOGIN_FAILED` (any reason; `detail` says which, for the audit log). */
  authenticate(userId: string, password: string): Promise<{ id: string; displayName: string }>;
}

/** Logins through an external OIDC identity provider (Warden as the relying party). */
export interface ExternalLogin {
  list(): Array<{ name: string; label: string }>;
  start(provider: string, redirectUri: string): Promise<{ redirectTo: string; state: { state: string } }>;
  finish(callbackUrl: URL, pending: never): Promise<{ userId: string; displayName?: string }>;
}

export interface InteractionDeps {
  /** `/oauth` */
  mountPath: string;
  /** `https://warden.example.com` */
  publicUrl: string;
  /** The provider instance in use now (it is rebuilt when signing keys rotate). */
  provider(): Promise<Provider>;
  store: Store;
  agents: AgentRegistry;
  grants: UserGrants;
  users: UserDirectory;
  passwords?: PasswordLogin;
  external?: ExternalLogin;
  config: OAuthConfig;
  audit(entry: AuditInput): Promise<unknown>;
  /** Upstreams used with each user's own account: the account page connects and disconnects them. */
  upstreamAccounts?: {
    perUserUpstreams(): Array<{ name: string; oauth: UserOAuth }>;
    userChanged(upstream: string, userId: string, connected: boolean): Promise<void>;
  };
  clock?: Clock;
  onServerError?: (err: unknown) => void;
}

const MAX_FORM_BYTES = 16 * 1024;
/** Account page sessions (grant list and revoke) last this long. */
const ACCOUNT_SESSION_MS = 30 * 60_000;
/** An external login must come back within this long. */
const EXTERNAL_LOGIN_MS = 10 * 60_000;

class FormError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = String(req.headers['content-type'] ?? '')
    .split(';')[0]
    ?.trim();
  if (type !== 'application/x-www-form-urlencoded') throw new FormError(415, 'Expected a form submission.');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new FormError(413, 'The form is too large.');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function parseCookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

function sameSecret(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function redirect(res: ServerResponse, location: string): void {
  res.statusCode = 303;
  res.setHeader('location', location);
  res.setHeader('cache-control', 'no-store');
  res.end();
}

/** The login, consent and account pages. */
export function createInteractions(deps: InteractionDeps) {
  const clock = deps.clock ?? systemClock;
  const base = deps.mountPath;
  const secure = new URL(deps.publicUrl).protocol === 'https:';
  const origin = new URL(deps.publicUrl).origin;
  const prefix = secure ? '__Host-' : '';
  const CSRF_COOKIE = `${prefix}warden-csrf`;
  const ACCOUNT_COOKIE = `${prefix}warden-account`;
  const LOGIN_COOKIE = `${prefix}warden-login`;

  function cookie(name: string, value: string, opts: { maxAgeS?: number; sameSite: 'Strict' | 'Lax' }) {
    return [
      `${name}=${value}`,
      'Path=/',
      'HttpOnly',
      `SameSite=${opts.sameSite}`,
      ...(secure ? ['Secure'] : []),
      ...(opts.maxAgeS === undefined ? [] : [`Max-Age=${opts.maxAgeS}`]),
    ].join('; ');
  }

  function addCookie(res: ServerResponse, value: string): void {
    const prev = res.getHeader('set-cookie');
    const list = Array.isArray(prev) ? prev : prev === undefined ? [] : [String(prev)];
    res.setHeader('set-cookie', [...list, value]);
  }

  /** The CSRF token of this browser, set when it has none yet. */
  function csrfToken(req: IncomingMessage, res: ServerResponse): string {
    const existing = parseCookies(req).get(CSRF_COOKIE);
    if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
    const token = randomBytes(32).toString('base64url');
    addCookie(res, cookie(CSRF_COOKIE, token, { sameSite: 'Strict' }));
    return token;
  }

  /** Refuses a form post that did not come from our own page in this browser. */
  function checkCsrf(req: IncomingMessage, form: URLSearchParams): void {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') {
      throw new FormError(403, 'This form must be sent from Warden’s own page.');
    }
    const from = req.headers.origin;
    // "null" is what a browser sends when a page's referrer policy hides the origin: only as
    // trustworthy as Sec-Fetch-Site, which must then say same-origin.
    const hidden = from === 'null' && site === 'same-origin';
    if (from !== undefined && from !== origin && !hidden) {
      throw new FormError(403, 'This form must be sent from Warden’s own page.');
    }
    if (!sameSecret(parseCookies(req).get(CSRF_COOKIE), form.get('csrf') ?? undefined)) {
      throw new FormError(403, 'The form expired or was not sent from Warden’s page. Go back and try again.');
    }
  }

  async function audit(entry: Omit<AuditInput, 'traceId'> & { traceId?: string }): Promise<void> {
    await deps.audit({ traceId: entry.traceId ?? randomId('oauth'), ...entry });
  }

  function page(res: ServerResponse, p: Page): void {
    sendPage(res, p);
  }

  function errorPage(res: ServerResponse, status: number, message: string): void {
    page(res, {
      title: 'Something went wrong',
      status,
      body: `<h1>Something went wrong</h1><p class="error">${esc(message)}</p><p class="muted">Start again from the application you were signing in to.</p>`,
    });
  }

  // ---- login -------------------------------------------------------------------------------

  /** A password login from a form, audited either way; `error` (the public message) when refused. */
  async function passwordLogin(
    passwords: PasswordLogin,
    form: URLSearchParams,
    data: Record<string, unknown>,
  ): Promise<{ username: string; user?: { id: string; displayName: string }; error?: string }> {
    const username = (form.get('username') ?? '').trim().slice(0, 64);
    try {
      const user = await passwords.authenticate(username, form.get('password') ?? '');
      await audit({
        event: 'USER_LOGIN',
        actorType: 'HUMAN',
        actorId: user.id,
        triggerUserId: user.id,
        result: 'success',
        data: { method: 'password', ...data },
      });
      return { username, user };
    } catch (e) {
      if (!isWardenError(e, 'LOGIN_FAILED')) throw e;
      await audit({
        event: 'USER_LOGIN_FAILED',
        actorType: 'HUMAN',
        actorId: username || null,
        result: 'denied',
        data: { method: 'password', ...data, reason: e.detail ?? 'failed' },
      });
      return { username, error: e.message };
    }
  }

  function loginForm(opts: {
    action: string;
    csrf: string;
    idpBase: string;
    error?: string;
    username?: string;
    intro: string;
  }): string {
    const idps = deps.external?.list() ?? [];
    const password = deps.passwords
      ? `<form method="post" action="${esc(opts.action)}">${csrfField(opts.csrf)}
<label for="username">User name</label><input id="username" type="text" name="username" autocomplete="username" required maxlength="64" value="${esc(opts.username ?? '')}">
<label for="password">Password</label><input id="password" type="password" name="password" autocomplete="current-password" required maxlength="1024">
<div class="row"><button class="primary" type="submit">Log in</button></div></form>`
      : '';
    const buttons = idps
      .map(
        (p) =>
          `<form method="get" action="${esc(`${opts.idpBase}/${encodeURIComponent(p.name)}`)}"><button type="submit">${esc(p.label)}</button></form>`,
      )
      .join('');
    return `<h1>Log in to Warden</h1><p>${opts.intro}</p>${opts.error ? `<p class="error" role="alert">${esc(opts.error)}</p>` : ''}${password}${buttons ? `<div class="row">${buttons}</div>` : ''}${!password && !buttons ? '<p class="error">No way to log in is configured.</p>' : ''}`;
  }

  async function clientOf(provider: Provider, details: InteractionDetails): Promise<ClientLike> {
    const clientId = String(details.params.client_id ?? '');
    const client = await provider.Client.find(clientId);
    if (!client) throw new FormError(400, 'The application asking for access is not known.');
    return client;
  }

  function clientLabel(client: ClientLike): string {
    return client.clientName ? `“${esc(client.clientName)}”` : 'An application';
  }

  async function showInteraction(req: IncomingMessage, res: ServerResponse, uid: string, error?: string) {
    const provider = await deps.provider();
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new FormError(400, 'This sign-in link does not belong to this browser.');
    const client = await clientOf(provider, details);
    const csrf = csrfToken(req, res);
    const target = formTarget(String(details.params.redirect_uri ?? ''));
    if (details.prompt.name === 'login') {
      page(res, {
        title: 'Log in',
        status: error ? 401 : 200,
        ...(target ? { formTargets: [target] } : {}),
        body: loginForm({
          action: `${base}/interaction/${uid}/login`,
          idpBase: `${base}/interaction/${uid}/idp`,
          csrf,
          ...(error ? { error } : {}),
          intro: `${clientLabel(client)} wants to use Warden’s tools for you. Log in to see what it asks for.`,
        }),
      });
      return;
    }
    await showConsent(res, details, client, csrf, target, uid);
  }

  async function loginPost(req: IncomingMessage, res: ServerResponse, uid: string) {
    const provider = await deps.provider();
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new FormError(400, 'This sign-in link does not belong to this browser.');
    const form = await readForm(req);
    checkCsrf(req, form);
    if (details.prompt.name !== 'login' || !deps.passwords) {
      redirect(res, `${base}/interaction/${uid}`);
      return;
    }
    const login = await passwordLogin(deps.passwords, form, {
      clientId: String(details.params.client_id ?? ''),
    });
    if (!login.user) {
      const client = await clientOf(provider, details);
      page(res, {
        title: 'Log in',
        status: 401,
        body: loginForm({
          action: `${base}/interaction/${uid}/login`,
          idpBase: `${base}/interaction/${uid}/idp`,
          csrf: csrfToken(req, res),
          username: login.username,
          error: login.error,
          intro: `${clientLabel(client)} wants to use Warden’s tools for you. Log in to see what it asks for.`,
        }),
      });
      return;
    }
    const user = login.user;
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.id } },
      { mergeWithLastSubmission: false },
    );
  }

  // ---- consent -----------------------------------------------------------------------------

  function requested(details: InteractionDetails): string[] | undefined {
    const s = details.params.scope;
    return typeof s === 'string' ? s.split(' ').filter(Boolean) : undefined;
  }

  function resourceOf(details: InteractionDetails): string {
    const r = details.params.resource;
    return typeof r === 'string' ? r : Array.isArray(r) && typeof r[0] === 'string' ? r[0] : deps.publicUrl;
  }

  async function agentsFor(details: InteractionDetails, client: ClientLike): Promise<Agent[]> {
    const kind = clientKind(client);
    const userId = details.session?.accountId;
    if (kind === 'agent' || !userId) return [];
    return eligibleAgents(deps.agents, { clientId: client.clientId, kind }, userId, clock.now());
  }

  async function showConsent(
    res: ServerResponse,
    details: InteractionDetails,
    client: ClientLike,
    csrf: string,
    target: string | undefined,
    uid: string,
  ) {
    const userId = details.session?.accountId ?? '';
    const agents = (await agentsFor(details, client)).filter(
      (a) => offerFor(a, requested(details), userId).length > 0,
    );
    const redirectUri = String(details.params.redirect_uri ?? '');
    const kind = clientKind(client);
    const clientRows = `<dl><dt>Application</dt><dd>${client.clientName ? esc(client.clientName) : '<span class="muted">(no name given)</span>'}</dd>
<dt>Client id</dt><dd><code>${esc(client.clientId)}</code></dd>
<dt>Known as</dt><dd>${kind === 'metadata-document' ? `a client metadata document published at <strong>${esc(new URL(client.clientId).host)}</strong>` : 'a dynamically registered client <span class="warn">(its name is not verified)</span>'}</dd>
<dt>Sends you to</dt><dd><strong>${esc(redirectHost(redirectUri) ?? redirectUri)}</strong> after you decide</dd>
<dt>Your account</dt><dd><code>${esc(userId)}</code></dd></dl>`;
    const deny = `<button type="submit" name="decision" value="deny">Deny</button>`;
    if (agents.length === 0) {
      page(res, {
        title: 'No access available',
        ...(target ? { formTargets: [target] } : {}),
        body: `<h1>This application cannot act for you here</h1>${clientRows}<p class="error">No agent at this Warden accepts this application for your account${requested(details) ? ' with the access it asks for' : ''}. Ask the operator of Warden if you think it should.</p>
<form method="post" action="${esc(`${base}/interaction/${uid}/consent`)}">${csrfField(csrf)}<div class="row">${deny}</div></form>`,
      });
      return;
    }
    const days = Math.round(deps.config.grantTtlMs / 86_400_000);
    const choices = agents
      .map((a, i) => {
        const scopes = offerFor(a, requested(details), userId);
        return `<label class="choice"><input type="radio" name="agent" value="${esc(a.id)}"${i === 0 ? ' checked' : ''}${agents.length === 1 ? ' hidden' : ''}><span><strong>${esc(a.id)}</strong> <span class="muted">(${esc(a.type)}, ${esc(a.environment)}, owned by ${esc(a.owner)})</span>
<ul>${scopes.map((s) => `<li>${esc(describeScope(s))} <code class="muted">${esc(s)}</code></li>`).join('')}</ul></span></label>`;
      })
      .join('');
    page(res, {
      title: 'Allow access?',
      ...(target ? { formTargets: [target] } : {}),
      body: `<h1>Allow ${clientLabel(client)} to act for you?</h1>${clientRows}
<h2>It will act as ${agents.length === 1 ? 'this agent' : 'one of these agents (choose)'}, with this access</h2>
<form method="post" action="${esc(`${base}/interaction/${uid}/consent`)}">${csrfField(csrf)}${choices}
<p class="muted">Every call is still checked by Warden’s policies, and risky ones wait for a human. Access lasts up to ${days} day${days === 1 ? '' : 's'}; you can revoke it at any time on <a href="${esc(`${base}/account`)}">your account page</a>.</p>
<div class="row"><button class="primary" type="submit" name="decision" value="allow">Allow</button>${deny}</div></form>`,
    });
  }

  async function consentPost(req: IncomingMessage, res: ServerResponse, uid: string) {
    const provider = await deps.provider();
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new FormError(400, 'This sign-in link does not belong to this browser.');
    const form = await readForm(req);
    checkCsrf(req, form);
    const userId = details.session?.accountId;
    if (details.prompt.name !== 'consent' || !userId) {
      redirect(res, `${base}/interaction/${uid}`);
      return;
    }
    const client = await clientOf(provider, details);
    const redirectUri = String(details.params.redirect_uri ?? '');
    const common = {
      actorType: 'HUMAN' as const,
      actorId: userId,
      triggerUserId: userId,
      triggerSource: 'user' as const,
    };
    if (form.get('decision') !== 'allow') {
      await audit({
        ...common,
        event: 'CONSENT_DENIED',
        result: 'denied',
        data: {
          clientId: client.clientId,
          clientName: client.clientName ?? null,
          redirectHost: redirectHost(redirectUri),
        },
      });
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the user denied the request' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const agents = await agentsFor(details, client);
    const agent = agents.find((a) => a.id === form.get('agent'));
    const scopes = agent ? offerFor(agent, requested(details), userId) : [];
    if (!agent || scopes.length === 0) throw new FormError(400, 'Choose one of the agents offered.');
    // The code carries the request's scopes: make them exactly what the user was shown and allowed
    // (a request without scopes, or with some this user may not have, is narrowed here).
    const scope = scopes.join(' ');
    if (details.params.scope !== scope) {
      details.params.scope = scope;
      await details.save(Math.max(1, details.exp - Math.floor(Date.now() / 1000)));
    }
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    if (!grant || grant.accountId !== userId || grant.clientId !== client.clientId) {
      grant = new provider.Grant({ accountId: userId, clientId: client.clientId });
    }
    grant.addResourceScope(resourceOf(details), scopes.join(' '));
    const grantId = await grant.save();
    await deps.grants.record({
      id: grantId,
      userId,
      agentId: agent.id,
      clientId: client.clientId,
      clientName: client.clientName ?? null,
      redirectHost: redirectHost(redirectUri),
      scopes,
    });
    await audit({
      ...common,
      event: 'CONSENT_GRANTED',
      agentId: agent.id,
      agentType: agent.type,
      result: 'success',
      data: {
        grantId,
        clientId: client.clientId,
        clientName: client.clientName ?? null,
        redirectHost: redirectHost(redirectUri),
        scopes,
      },
    });
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  // ---- external identity providers -----------------------------------------------------------

  /**
   * Leaves for another site's sign-in (an identity provider, an upstream's authorization server):
   * what the return needs is kept server-side under the OAuth `state`, bound to this browser by a
   * random cookie whose hash is stored beside it.
   */
  async function departBound(
    res: ServerResponse,
    model: 'WardenLogin' | 'WardenConnect',
    state: string,
    payload: Record<string, unknown>,
    redirectTo: string,
  ): Promise<void> {
    const binding = randomBytes(32).toString('base64url');
    await deps.store.db
      .insertInto('oidc_models')
      .values({
        model,
        id: state,
        payload: JSON.stringify({
          ...payload,
          binding: createHash('sha256').update(binding).digest('base64url'),
        }),
        expires_at: clock.now() + EXTERNAL_LOGIN_MS,
        consumed_at: null,
        grant_id: null,
        uid: null,
        user_code: null,
      })
      .execute();
    addCookie(res, cookie(LOGIN_COOKIE, binding, { sameSite: 'Lax', maxAgeS: EXTERNAL_LOGIN_MS / 1000 }));
    redirect(res, redirectTo);
  }

  /** The return from departBound: single-use, unexpired, and in the browser that left. */
  async function returnBound<T>(
    req: IncomingMessage,
    res: ServerResponse,
    model: 'WardenLogin' | 'WardenConnect',
    state: string,
    what: 'login' | 'connection',
  ): Promise<T> {
    const row = await deps.store.db
      .deleteFrom('oidc_models')
      .where('model', '=', model)
      .where('id', '=', state)
      .returning(['payload', 'expires_at'])
      .executeTakeFirst();
    if (!row || Number(row.expires_at) <= clock.now()) {
      throw new FormError(400, `This ${what} expired or was already used. Start again.`);
    }
    const saved = JSON.parse(row.payload) as T & { binding: string };
    const binding = parseCookies(req).get(LOGIN_COOKIE);
    addCookie(res, cookie(LOGIN_COOKIE, '', { sameSite: 'Lax', maxAgeS: 0 }));
    const hashed = binding ? createHash('sha256').update(binding).digest('base64url') : undefined;
    if (!sameSecret(hashed, saved.binding))
      throw new FormError(400, `This ${what} was started in another browser.`);
    return saved;
  }

  async function externalStart(
    res: ServerResponse,
    name: string,
    purpose: { interaction: string } | { account: true },
  ): Promise<void> {
    if (!deps.external?.list().some((p) => p.name === name))
      throw new FormError(404, 'Unknown identity provider.');
    const started = await deps.external.start(name, `${deps.publicUrl}${base}/login/callback`);
    await departBound(
      res,
      'WardenLogin',
      started.state.state,
      { pending: started.state, ...purpose },
      started.redirectTo,
    );
  }

  async function externalCallback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const saved = await returnBound<{ pending: never; interaction?: string; account?: true }>(
      req,
      res,
      'WardenLogin',
      url.searchParams.get('state') ?? '',
      'login',
    );
    let user: { userId: string; displayName?: string };
    try {
      user = await deps.external!.finish(url, saved.pending);
    } catch (e) {
      if (!isWardenError(e, 'LOGIN_FAILED')) throw e;
      await audit({
        event: 'USER_LOGIN_FAILED',
        actorType: 'HUMAN',
        result: 'denied',
        data: { method: 'oidc', reason: e.detail ?? e.message },
      });
      throw new FormError(401, 'The identity provider did not confirm who you are. Start again.');
    }
    await audit({
      event: 'USER_LOGIN',
      actorType: 'HUMAN',
      actorId: user.userId,
      triggerUserId: user.userId,
      result: 'success',
      data: { method: 'oidc' },
    });
    if (saved.account) {
      await startAccountSession(res, user.userId);
      redirect(res, `${base}/account`);
      return;
    }
    const provider = await deps.provider();
    const interaction = await provider.Interaction.find(saved.interaction ?? '');
    if (!interaction) throw new FormError(400, 'The sign-in expired. Start again from the application.');
    interaction.result = { login: { accountId: user.userId } };
    await interaction.save(Math.max(1, interaction.exp - Math.floor(Date.now() / 1000)));
    redirect(res, interaction.returnTo);
  }

  // ---- account: list and revoke grants -----------------------------------------------------

  async function startAccountSession(res: ServerResponse, userId: string): Promise<void> {
    const id = randomBytes(32).toString('base64url');
    await deps.store.db
      .insertInto('oidc_models')
      .values({
        model: 'WardenAccount',
        id: createHash('sha256').update(id).digest('base64url'),
        payload: JSON.stringify({ userId }),
        expires_at: clock.now() + ACCOUNT_SESSION_MS,
        consumed_at: null,
        grant_id: null,
        uid: null,
        user_code: null,
      })
      .execute();
    addCookie(res, cookie(ACCOUNT_COOKIE, id, { sameSite: 'Strict', maxAgeS: ACCOUNT_SESSION_MS / 1000 }));
  }

  async function accountUser(req: IncomingMessage): Promise<string | undefined> {
    const id = parseCookies(req).get(ACCOUNT_COOKIE);
    if (!id) return undefined;
    const row = await deps.store.db
      .selectFrom('oidc_models')
      .select(['payload', 'expires_at'])
      .where('model', '=', 'WardenAccount')
      .where('id', '=', createHash('sha256').update(id).digest('base64url'))
      .executeTakeFirst();
    if (!row || Number(row.expires_at) <= clock.now()) return undefined;
    const userId = (JSON.parse(row.payload) as { userId: string }).userId;
    return (await deps.users.find(userId)) ? userId : undefined;
  }

  function grantRow(g: UserGrant, csrf: string): string {
    return `<tr><td><strong>${esc(g.clientName ?? g.clientId)}</strong><br><span class="muted">as agent ${esc(g.agentId)} · to ${esc(g.redirectHost ?? '?')}</span></td>
<td><ul>${g.scopes.map((s) => `<li>${esc(describeScope(s))}</li>`).join('')}</ul><span class="muted">since ${esc(new Date(g.createdAt).toISOString().slice(0, 16).replace('T', ' '))} UTC${g.lastUsedAt ? `, last used ${esc(new Date(g.lastUsedAt).toISOString().slice(0, 16).replace('T', ' '))} UTC` : ''}</span></td>
<td><form method="post" action="${esc(`${base}/account/revoke`)}">${csrfField(csrf)}<input type="hidden" name="grant" value="${esc(g.id)}"><button type="submit">Revoke</button></form></td></tr>`;
  }

  async function showAccount(req: IncomingMessage, res: ServerResponse, error?: string): Promise<void> {
    const csrf = csrfToken(req, res);
    const userId = await accountUser(req);
    if (!userId) {
      page(res, {
        title: 'Your grants',
        status: error ? 401 : 200,
        body: loginForm({
          action: `${base}/account/login`,
          idpBase: `${base}/account/idp`,
          csrf,
          ...(error ? { error } : {}),
          intro: 'Log in to see which applications may act for you, and to revoke them.',
        }),
      });
      return;
    }
    const grants = await deps.grants.listForUser(userId);
    const accounts = await connectedAccounts(userId, csrf);
    page(res, {
      title: 'Your grants',
      ...(error ? { status: 400 } : {}),
      body: `<h1>Applications acting for you</h1><p class="muted">Logged in as <code>${esc(userId)}</code>.</p>${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
${grants.length === 0 ? '<p>You have not allowed any application to act for you.</p>' : `<table><thead><tr><th>Application</th><th>Access</th><th></th></tr></thead><tbody>${grants.map((g) => grantRow(g, csrf)).join('')}</tbody></table>`}${accounts}
<form method="post" action="${esc(`${base}/account/logout`)}">${csrfField(csrf)}<div class="row"><button type="submit">Log out</button></div></form>`,
    });
  }

  // ---- your own accounts at upstreams (per-user credentials) --------------------------------

  const perUser = () => deps.upstreamAccounts?.perUserUpstreams() ?? [];

  async function connectedAccounts(userId: string, csrf: string): Promise<string> {
    const list = perUser();
    if (list.length === 0) return '';
    const rows = await Promise.all(
      list.map(async (u) => {
        const on = await u.oauth.connected(userId);
        const action = on
          ? `<form method="post" action="${esc(`${base}/account/disconnect`)}">${csrfField(csrf)}<input type="hidden" name="upstream" value="${esc(u.name)}"><button type="submit">Disconnect</button></form>`
          : `<form method="get" action="${esc(`${base}/account/connect/${encodeURIComponent(u.name)}`)}"><button class="primary" type="submit">Connect</button></form>`;
        return `<tr><td><strong>${esc(u.name)}</strong><br><span class="muted">${esc(new URL(u.oauth.issuer).host)}</span></td><td>${on ? 'connected: its tools act as you' : 'not connected'}</td><td>${action}</td></tr>`;
      }),
    );
    return `<h2>Your accounts at tools</h2><p class="muted">These tools act with your own account there. Warden keeps the tokens encrypted and never shows them to an agent.</p><table><tbody>${rows.join('')}</tbody></table>`;
  }

  function upstreamNamed(name: string): { name: string; oauth: UserOAuth } {
    const u = perUser().find((x) => x.name === name);
    if (!u) throw new FormError(404, 'There is no such tool account.');
    return u;
  }

  async function connectStart(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const userId = await accountUser(req);
    if (!userId) throw new FormError(401, 'Log in on your account page first.');
    const u = upstreamNamed(name);
    const started = await u.oauth.start(userId, `${deps.publicUrl}${base}/connect/callback`);
    await departBound(
      res,
      'WardenConnect',
      started.pending.state,
      { pending: started.pending },
      started.redirectTo,
    );
  }

  async function connectCallback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const saved = await returnBound<{ pending: PendingConnect }>(
      req,
      res,
      'WardenConnect',
      url.searchParams.get('state') ?? '',
      'connection',
    );
    // The tokens go to the user who started, and only while that user is still logged in here.
    if ((await accountUser(req)) !== saved.pending.userId) {
      throw new FormError(401, 'Log in on your account page again, then connect.');
    }
    const u = upstreamNamed(saved.pending.upstream);
    try {
      await u.oauth.finish(url, saved.pending);
    } catch (e) {
      if (!isWardenError(e)) throw e;
      return showAccount(req, res, `${u.name}: ${e.message}.`);
    }
    await deps.upstreamAccounts?.userChanged(u.name, saved.pending.userId, true);
    await audit({
      event: 'UPSTREAM_CONNECTED',
      actorType: 'HUMAN',
      actorId: saved.pending.userId,
      triggerUserId: saved.pending.userId,
      triggerSource: 'user',
      result: 'success',
      data: { upstream: u.name, issuer: u.oauth.issuer },
    });
    redirect(res, `${base}/account`);
  }

  async function disconnect(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    checkCsrf(req, form);
    const userId = await accountUser(req);
    if (!userId) throw new FormError(401, 'Log in again to disconnect an account.');
    const u = upstreamNamed(form.get('upstream') ?? '');
    if (await u.oauth.disconnect(userId)) {
      await deps.upstreamAccounts?.userChanged(u.name, userId, false);
      await audit({
        event: 'UPSTREAM_DISCONNECTED',
        actorType: 'HUMAN',
        actorId: userId,
        triggerUserId: userId,
        triggerSource: 'user',
        result: 'success',
        data: { upstream: u.name, issuer: u.oauth.issuer },
      });
    }
    redirect(res, `${base}/account`);
  }

  async function accountLogin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    checkCsrf(req, form);
    if (!deps.passwords) throw new FormError(404, 'Password login is not available.');
    const login = await passwordLogin(deps.passwords, form, { page: 'account' });
    if (!login.user) return showAccount(req, res, login.error);
    await startAccountSession(res, login.user.id);
    redirect(res, `${base}/account`);
  }

  async function accountRevoke(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    checkCsrf(req, form);
    const userId = await accountUser(req);
    if (!userId) throw new FormError(401, 'Log in again to revoke a grant.');
    const grant = await deps.grants.get(form.get('grant') ?? '');
    // Someone else's grant looks exactly like a missing one.
    if (!grant || grant.userId !== userId) throw new FormError(404, 'No such grant.');
    const revoked = await deps.grants.revoke(grant.id, userId);
    if (revoked.changed) {
      await audit({
        event: 'GRANT_REVOKED',
        actorType: 'HUMAN',
        actorId: userId,
        agentId: grant.agentId,
        triggerUserId: userId,
        triggerSource: 'user',
        result: 'success',
        data: {
          grantId: grant.id,
          clientId: grant.clientId,
          by: 'user',
          sessionsRevoked: revoked.sessions.length,
        },
      });
    }
    redirect(res, `${base}/account`);
  }

  async function accountLogout(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    checkCsrf(req, form);
    const id = parseCookies(req).get(ACCOUNT_COOKIE);
    if (id) {
      await deps.store.db
        .deleteFrom('oidc_models')
        .where('model', '=', 'WardenAccount')
        .where('id', '=', createHash('sha256').update(id).digest('base64url'))
        .execute();
    }
    addCookie(res, cookie(ACCOUNT_COOKIE, '', { sameSite: 'Strict', maxAgeS: 0 }));
    redirect(res, `${base}/account`);
  }

  // ---- routing -----------------------------------------------------------------------------

  /** Routes: method, path pattern, handler (with the pattern's captures). */
  const routes: Array<
    [string, RegExp, (req: IncomingMessage, res: ServerResponse, m: string[], url: URL) => Promise<void>]
  > = [
    ['GET', /^\/interaction\/([A-Za-z0-9_-]{1,64})$/, (req, res, m) => showInteraction(req, res, m[1]!)],
    ['POST', /^\/interaction\/([A-Za-z0-9_-]{1,64})\/login$/, (req, res, m) => loginPost(req, res, m[1]!)],
    [
      'POST',
      /^\/interaction\/([A-Za-z0-9_-]{1,64})\/consent$/,
      (req, res, m) => consentPost(req, res, m[1]!),
    ],
    [
      'GET',
      /^\/interaction\/([A-Za-z0-9_-]{1,64})\/idp\/([a-z0-9-]{1,63})$/,
      async (req, res, m) => {
        const provider = await deps.provider();
        const details = await provider.interactionDetails(req, res);
        if (details.uid !== m[1])
          throw new FormError(400, 'This sign-in link does not belong to this browser.');
        await externalStart(res, m[2]!, { interaction: details.uid });
      },
    ],
    ['GET', /^\/login\/callback$/, (req, res, _m, url) => externalCallback(req, res, url)],
    ['GET', /^\/account$/, (req, res) => showAccount(req, res)],
    ['POST', /^\/account\/login$/, (req, res) => accountLogin(req, res)],
    ['POST', /^\/account\/revoke$/, (req, res) => accountRevoke(req, res)],
    ['POST', /^\/account\/logout$/, (req, res) => accountLogout(req, res)],
    [
      'GET',
      /^\/account\/idp\/([a-z0-9-]{1,63})$/,
      (_req, res, m) => externalStart(res, m[1]!, { account: true }),
    ],
    ['GET', /^\/account\/connect\/([a-z0-9-]{1,64})$/, (req, res, m) => connectStart(req, res, m[1]!)],
    ['POST', /^\/account\/disconnect$/, (req, res) => disconnect(req, res)],
    ['GET', /^\/connect\/callback$/, (req, res, _m, url) => connectCallback(req, res, url)],
  ];

  async function route(req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<void> {
    for (const [method, pattern, handler] of routes) {
      const m = pattern.exec(path);
      if (m && req.method === method) return handler(req, res, [...m], url);
    }
    throw new FormError(404, 'There is no such page.');
  }

  return {
    /** Whether `path` (below the mount) is one of these pages. */
    owns(path: string): boolean {
      return (
        path.startsWith('/interaction/') ||
        path === '/login/callback' ||
        path === '/connect/callback' ||
        path === '/account' ||
        path.startsWith('/account/')
      );
    },
    /** Serves one of the pages; never throws. */
    handle(req: IncomingMessage, res: ServerResponse, path: string): void {
      const url = new URL(req.url ?? '/', deps.publicUrl);
      route(req, res, path, url).catch((e: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (e instanceof FormError) return errorPage(res, e.status, e.message);
        // oidc-provider: no interaction for this browser (expired, or the cookie is missing).
        const name = (e as { name?: string } | null)?.name;
        if (name === 'SessionNotFound' || name === 'InvalidRequest') {
          return errorPage(
            res,
            400,
            'This sign-in expired or was started in another browser. Start again from the application.',
          );
        }
        deps.onServerError?.(e);
        errorPage(res, 500, 'Warden could not complete this step. Try again in a moment.');
      });
    },
  };
}

export type Interactions = ReturnType<typeof createInteractions>;
