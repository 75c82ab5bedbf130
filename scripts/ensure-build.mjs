// `prepare` hook: build dist/ after `npm ci` so `npx warden` runs compiled code.
// Skipped (with a note) when TypeScript is absent, e.g. a production install without dev dependencies.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const tsc = new URL('../node_modules/typescript/bin/tsc', import.meta.url);
if (!existsSync(tsc)) {
  console.error(
    '[warden] TypeScript not installed: skipping build (bin/warden.js falls back to tsx or needs dist/).',
  );
  process.exit(0);
}
execFileSync(process.execPath, [tsc.pathname, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
