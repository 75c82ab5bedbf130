/**
 * What offline commands (agents, token, audit) share: the config and an open
 * store, with the same identity services the gateway uses.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/index.js';
import type { WardenConfig } from '../config/types.js';

/** Options every command that reads config accepts. */
export interface ConfigOption {
  config?: string;
}

/** The config file to use: --config, else WARDEN_CONFIG, else ./warden.yaml when present, else the embedded default. */
export function configPath(opt: ConfigOption): string | undefined {
  if (opt.config) return opt.config;
  if (process.env.WARDEN_CONFIG) return process.env.WARDEN_CONFIG;
  return existsSync('warden.yaml') ? 'warden.yaml' : undefined;
}

/** Load the config; for the embedded default, make sure the demo agent has a key pair on disk. */
export async function loadForCli(opt: ConfigOption): Promise<{ config: WardenConfig; warnings: string[] }> {
  const loaded = await loadConfig(configPath(opt), { cwd: process.cwd() });
  if (loaded.config.source === null) await ensureDemoAgentKey(loaded.config);
  return loaded;
}

/** Path of the demo agent's private key in the embedded default. */
export function demoKeyPath(config: WardenConfig): string {
  return join(config.dataDir, 'demo-support.private.jwk');
}

/**
 * The embedded default's demo agent authenticates with private_key_jwt like any
 * agent: its key pair is generated once into the data directory (mode 0600) and
 * only the public half is registered.
 */
export async function ensureDemoAgentKey(config: WardenConfig): Promise<void> {
  const path = demoKeyPath(config);
  let privateJwk: Record<string, unknown>;
  if (existsSync(path)) {
    privateJwk = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } else {
    mkdirSync(config.dataDir, { recursive: true });
    const { generateAgentKeyPair } = await import('../identity/index.js');
    const pair = await generateAgentKeyPair();
    privateJwk = pair.privateJwk as Record<string, unknown>;
    writeFileSync(path, JSON.stringify(privateJwk), { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  const { d: _d, ...publicJwk } = privateJwk;
  for (const agent of config.agents) if (agent.id === 'demo-support') agent.publicJwk = publicJwk;
}
