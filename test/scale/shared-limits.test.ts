/**
 * Two gateway processes sharing one Redis hold one global limit exactly:
 * `warden start` twice (each with its own SQLite store), the same agent
 * registered in both, and N + k concurrent calls split across them — exactly N
 * succeed, the rest get 429. Loopback only; every child is bounded and killed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { supportDeskCommand } from '../../examples/support-desk/command.js';
import { generateAgentKeyPair, requestSessionToken } from '../../src/identity/index.js';
import { describeRedis, REDIS_URL, uniqueNamespace } from '../helpers/redis.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const LIMIT = 12;
const EXTRA = 12;
const START_TIMEOUT_MS = 45_000;

interface Replica {
  child: ChildProcess;
  url: string;
  stderr: () => string;
}

/** `warden start --config <file> --port 0` from source (tsx), resolved once it prints its URL. */
function startReplica(configFile: string): Promise<Replica> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'start', '--config', configFile, '--port', '0'],
    {
      cwd: REPO,
      env: { ...process.env, WARDEN_CONFIG: undefined, NODE_OPTIONS: undefined },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr?.setEncoding('utf8');
  return new Promise<Replica>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`warden start did not come up in ${START_TIMEOUT_MS} ms:\n${err}`));
    }, START_TIMEOUT_MS);
    child.stderr?.on('data', (d: string) => {
      err += d;
      const m = /Warden is running at (http:\/\/\S+)/.exec(err);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ child, url: m[1], stderr: () => err });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`warden start exited (${code}) before serving:\n${err}`));
    });
  });
}

async function stop(r: Replica | undefined): Promise<void> {
  const child = r?.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(killer);
}

describeRedis('two gateway processes sharing Redis', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-shared-'));
  const replicas: Replica[] = [];
  let privateJwk: Record<string, unknown>;

  beforeAll(async () => {
    const pair = await generateAgentKeyPair();
    privateJwk = pair.privateJwk as Record<string, unknown>;
    const namespace = uniqueNamespace();
    const files = ['a', 'b'].map((name) => {
      const config = {
        dataDir: `./data-${name}`,
        server: { host: '127.0.0.1', port: 0 },
        store: { url: 'sqlite:warden.db' },
        upstreams: [{ name: 'support-desk', transport: 'stdio', ...supportDeskCommand() }],
        agents: ['shared-bot', 'warm-bot'].map((id) => ({
          id,
          type: 'customer-support',
          version: '1.0.0',
          environment: 'test',
          owner: 'team',
          expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
          maxConcurrentSessions: 5,
          allowedTools: ['lookup_order'],
          publicKey: pair.publicJwk,
          constraints: { maxToolCalls: 1000 },
        })),
        tools: { lookup_order: { risk: 'low' } },
        limits: {
          store: 'redis',
          redis: { url: REDIS_URL },
          namespace,
          rates: [{ per: 'agent', points: LIMIT, duration: '1m' }],
        },
        log: { level: 'warn' },
      };
      const file = join(dir, `warden-${name}.yaml`);
      writeFileSync(file, stringify(config));
      return file;
    });
    const started = await Promise.allSettled(files.map(startReplica));
    for (const s of started) if (s.status === 'fulfilled') replicas.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
  }, 2 * START_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(replicas.map(stop));
    rmSync(dir, { recursive: true, force: true });
  });

  it(`admits exactly ${LIMIT} of ${LIMIT + EXTRA} concurrent calls split across both`, async () => {
    const [a, b] = replicas;
    expect(a!.url).not.toBe(b!.url);
    const tokenFor = (agentId: string) =>
      Promise.all(
        replicas.map(async (r) => {
          const t = await requestSessionToken({ tokenEndpoint: `${r.url}/oauth/token`, agentId, privateJwk });
          return t.access_token;
        }),
      );
    const send = async (replica: number, token: string) => {
      const res = await fetch(`${replicas[replica]!.url}/v1/tool-calls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ toolName: 'lookup_order', parameters: { orderId: 'ORD-4F8K2P1Z' } }),
        signal: AbortSignal.timeout(20_000),
      });
      const body = (await res.json()) as { error?: { code: string } };
      return { replica, status: res.status, code: body.error?.code };
    };
    // Warm each replica up with another agent (its own counter): the burst then measures
    // the shared count, not a cold start compiling schemas while Redis replies wait.
    const warm = await tokenFor('warm-bot');
    for (const i of [0, 1]) expect((await send(i, warm[i]!)).status).toBe(200);
    const tokens = await tokenFor('shared-bot');
    const call = (i: number) => send(i % 2, tokens[i % 2]!);
    const results = await Promise.all(Array.from({ length: LIMIT + EXTRA }, (_, i) => call(i)));
    const ok = results.filter((r) => r.status === 200);
    const limited = results.filter((r) => r.status === 429);
    const summary = JSON.stringify(results);
    // Each replica gets LIMIT of the calls, so per-process counters would admit all of them:
    // exactly LIMIT admitted in all means the count is shared. Which replica's calls win the
    // race is timing (Redis pipelines each replica's burst), so it is not asserted.
    expect(ok, summary).toHaveLength(LIMIT);
    expect(limited, summary).toHaveLength(EXTRA);
    expect(new Set(limited.map((r) => r.code))).toEqual(new Set(['RATE_LIMITED']));
  });
});
