/**
 * How to spawn the support desk over stdio: the built JavaScript when the
 * project has been built, otherwise the TypeScript source through tsx.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

// This module runs either as examples/support-desk/command.ts (source) or as
// dist/examples/support-desk/command.js (built, rootDir '.'): find the repo root from it.
const built = import.meta.url.endsWith('.js');
const root = new URL(built ? '../../../' : '../../', import.meta.url);

/** The command and arguments that start the stdio support desk. */
export function supportDeskCommand(): { command: string; args: string[] } {
  const entry = fileURLToPath(new URL('dist/examples/support-desk/stdio.js', root));
  if (existsSync(entry)) return { command: process.execPath, args: [entry] };
  const source = fileURLToPath(new URL('examples/support-desk/stdio.ts', root));
  return { command: process.execPath, args: ['--import', tsxLoader(), source] };
}

/** tsx's loader as an absolute URL, so the child resolves it whatever its cwd is. */
function tsxLoader(): string {
  try {
    return pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  } catch {
    return 'tsx';
  }
}
