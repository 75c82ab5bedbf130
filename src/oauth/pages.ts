/**
 * The HTML of the login, consent and account pages. Every value is escaped
 * where it is inserted; there is no script at all, and the one stylesheet is
 * allowed by its hash in the Content-Security-Policy, so an injected tag has
 * nothing to run and nowhere to post.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/** Escapes text for HTML element content and double-quoted attribute values. */
export function esc(value: unknown): string {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--accent:#0b57d0;--button:#0b57d0;--warn:#9a3412}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#58a6ff;--button:#1f6feb;--warn:#fb923c}}
*{box-sizing:border-box}body{margin:0;padding:0 .75rem;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:var(--bg);color:var(--fg)}a{color:var(--accent)}
main{max-width:34rem;margin:2rem auto;padding:1.5rem;background:var(--card);border:1px solid var(--line);border-radius:12px}
h1{font-size:1.35rem;margin:0 0 .75rem}h2{font-size:1rem;margin:1.25rem 0 .4rem}
p,li,dd{color:var(--fg)}.muted{color:var(--muted);font-size:.9rem}.warn{color:var(--warn)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem .9rem;margin:.5rem 0}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
ul{padding-left:1.2rem;margin:.4rem 0}code{font-size:.85em;overflow-wrap:anywhere}
label{display:block;margin:.6rem 0 .2rem;font-weight:600}
input[type=text],input[type=password]{width:100%;padding:.55rem .6rem;font:inherit;border:1px solid var(--line);border-radius:8px;background:var(--bg);color:var(--fg)}
.row{display:flex;gap:.6rem;flex-wrap:wrap;margin-top:1.1rem}
button{font:inherit;padding:.55rem 1.1rem;border-radius:8px;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer}
button.primary{background:var(--button);border-color:var(--button);color:#fff}
.error{border:1px solid var(--warn);color:var(--warn);padding:.5rem .7rem;border-radius:8px;margin:.5rem 0}
.choice{display:flex;gap:.5rem;align-items:flex-start;font-weight:400}
table{width:100%;border-collapse:collapse;font-size:.92rem}td,th{text-align:left;padding:.35rem .3rem;border-top:1px solid var(--line);vertical-align:top}
`;
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

/** A page: title and body (already escaped HTML). */
export interface Page {
  title: string;
  body: string;
  status?: number;
  /** Origins (or `scheme:`) a form on the page may end up at after redirects: the client's redirect URI. */
  formTargets?: string[];
}

/** The source a form may post or redirect to, for CSP `form-action`: an origin, or a custom scheme. */
export function formTarget(uri: string | undefined): string | undefined {
  const url = uri ? URL.parse(uri) : null;
  if (!url) return undefined;
  if (url.protocol === 'http:' || url.protocol === 'https:') return url.origin;
  return /^[a-z][a-z0-9+.-]*:$/i.test(url.protocol) ? url.protocol : undefined;
}

/** Sends a page with the headers that keep it from being framed, cached, leaked or scripted. */
export function sendPage(res: ServerResponse, page: Page): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="same-origin"><title>${esc(page.title)} · Warden</title><style>${STYLE}</style></head><body><main>${page.body}</main></body></html>`;
  res.statusCode = page.status ?? 200;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader(
    'content-security-policy',
    [
      "default-src 'none'",
      `style-src ${STYLE_HASH}`,
      "img-src 'none'",
      `form-action 'self'${(page.formTargets ?? []).map((t) => ` ${t}`).join('')}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
  );
  res.setHeader('x-frame-options', 'DENY');
  // No Referer leaves Warden (the client's redirect host learns nothing of these pages); same-origin
  // posts keep their Origin header, which `no-referrer` would turn into "null" (Fetch §3.1).
  res.setHeader('referrer-policy', 'same-origin');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('cross-origin-opener-policy', 'same-origin');
  res.setHeader('cache-control', 'no-store');
  res.end(html);
}

/** A scope in plain words: what the user is allowing. */
export function describeScope(scope: string): string {
  const tool = /^tool:(.+):execute$/.exec(scope);
  if (tool) return `Run the tool “${tool[1]}”`;
  const [resource, action, ...rest] = scope.split(':');
  const what = rest.length >= 2 ? `${rest.slice(0, -1).join(' ')} ${rest.at(-1)}` : rest.join(' ');
  return `${action ? `${action[0]?.toUpperCase()}${action.slice(1)}` : 'Use'} ${resource}${what ? ` of ${what}` : ''}`;
}

/** The hidden CSRF field every form carries. */
export function csrfField(token: string): string {
  return `<input type="hidden" name="csrf" value="${esc(token)}">`;
}
