/** `warden policy validate|test`: prove the policy set, and run decision tables against it. */
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { isWardenError } from '../errors.js';
import { loadForCli } from './context.js';
import { printJson, reportError } from './output.js';

interface PolicyOptions {
  config?: string;
  json?: boolean;
}

function where(p: { file?: string; line?: number; column?: number }): string {
  if (p.file === undefined) return '';
  return p.line === undefined ? `${p.file}: ` : `${p.file}:${p.line}:${p.column ?? 1}: `;
}

/** Register the `policy` command group. */
export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('The Cedar policy set: validate it, test decisions');

  policy
    .command('validate')
    .description(
      'Build and prove the policy set as `warden start` would; exit 0 when valid, 1 naming each problem',
    )
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON output')
    .action(async (opts: PolicyOptions) => {
      try {
        const { toProblem, validatePolicies } = await import('../policy/test-file.js');
        let loaded: Awaited<ReturnType<typeof loadForCli>>;
        try {
          loaded = await loadForCli(opts);
        } catch (e) {
          // A config that does not load is an invalid set too: same report, same exit code.
          if (!isWardenError(e, 'CONFIG_INVALID')) throw e;
          const problems = e.message.split('\n').map(toProblem);
          if (opts.json) printJson({ ok: false, problems, warnings: [] });
          else for (const p of problems) process.stdout.write(`${where(p)}${p.message}\n`);
          process.exitCode = 1;
          return;
        }
        const r = await validatePolicies(loaded.config);
        if (opts.json) printJson(r);
        else {
          for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
          if (r.ok) process.stdout.write(`policy set valid: ${r.policyCount} policies, digest ${r.digest}\n`);
          else {
            for (const p of r.problems) process.stdout.write(`${where(p)}${p.message}\n`);
            process.stdout.write(`policy set INVALID: ${r.problems.length} problem(s)\n`);
          }
        }
        process.exitCode = r.ok ? 0 : 1;
      } catch (e) {
        reportError(e, opts.json);
      }
    });

  policy
    .command('test')
    .description(
      'Run policy test files (default: policies.tests.yaml beside the config); exit 0 only when every case passes',
    )
    .argument('[files...]', 'YAML test files')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'JSON output')
    .action(async (files: string[], opts: PolicyOptions) => {
      try {
        const { config } = await loadForCli(opts);
        const { runPolicyTestFiles } = await import('../policy/test-file.js');
        const list =
          files.length > 0
            ? files
            : [join(config.source === null ? process.cwd() : dirname(config.source), 'policies.tests.yaml')];
        const results = await runPolicyTestFiles(config, list);
        const failed = results.filter((r) => !r.ok).length;
        if (opts.json) printJson({ ok: failed === 0, passed: results.length - failed, failed, results });
        else {
          for (const r of results) {
            process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.file}[${r.index}] ${r.name}\n`);
            for (const p of r.problems) process.stdout.write(`       ${p}\n`);
          }
          process.stdout.write(
            `${failed === 0 ? 'PASS' : 'FAIL'}: ${results.length - failed} passed, ${failed} failed\n`,
          );
        }
        process.exitCode = failed === 0 ? 0 : 1;
      } catch (e) {
        reportError(e, opts.json);
      }
    });
}
