/** Loads a config written inline, as the config tests need it: the config, or the error's text. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { isWardenError } from '../../src/errors.js';

/** Writes `yaml` to a temporary warden.yaml and loads it; a WardenError becomes `{ error }` (message and detail). */
export async function loadYaml(yaml: string, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'warden-config-'));
  try {
    const file = join(dir, 'warden.yaml');
    writeFileSync(file, yaml);
    return await loadConfig(file, { env });
  } catch (e) {
    if (isWardenError(e)) return { error: `${e.message}\n${e.detail ?? ''}` };
    throw e;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
