/** `warden start`: run the gateway until SIGINT/SIGTERM; SIGHUP reloads policy. */
import type { Command } from 'commander';
import { WardenError } from '../errors.js';
import { demoKeyPath, loadForCli } from './context.js';
import { reportError } from './output.js';

interface StartOptions {
  config?: string;
  host?: string;
  port?: string;
}

/** Register the `start` command. */
export function registerStart(program: Command): void {
  program
    .command('start')
    .description(
      'Run the gateway (with no config: the embedded default — SQLite in .warden/, 127.0.0.1:8787, demo upstream)',
    )
    .option(
      '-c, --config <file>',
      'config file (default: $WARDEN_CONFIG, ./warden.yaml, or the embedded default)',
    )
    .option('--host <host>', 'listen address (overrides server.host)')
    .option('--port <port>', 'listen port (overrides server.port; 0 picks a free one)')
    .action(async (opts: StartOptions) => {
      try {
        const { config, warnings } = await loadForCli(opts);
        if (opts.host) config.server.host = opts.host;
        if (opts.port !== undefined) {
          const port = Number(opts.port);
          if (!Number.isInteger(port) || port < 0 || port > 65535)
            throw new Error(`--port: not a port: ${opts.port}`);
          config.server.port = port;
          config.server.publicUrl = `http://${config.server.host}:${port}`;
        }
        for (const w of warnings) process.stderr.write(`warden: warning: ${w}\n`);
        // Loaded here, not at the top: `warden --help` and the offline commands stay fast.
        const { startGateway } = await import('../server/gateway.js');
        const gw = await startGateway(config).catch((e: unknown) => {
          const err = e as NodeJS.ErrnoException;
          if (err?.code === 'EADDRINUSE') {
            throw new WardenError(
              'INVALID_REQUEST',
              `port ${config.server.port} on ${config.server.host} is already in use (is another Warden running?)`,
            );
          }
          throw e;
        });
        const lines = [
          `Warden is running at ${gw.url}`,
          `  MCP endpoint:   ${gw.url}/mcp`,
          `  REST endpoint:  ${gw.url}/v1/tool-calls`,
          `  Token endpoint: ${gw.url}/oauth/token (client_credentials + private_key_jwt)`,
          `  User logins:    ${gw.url}/oauth/authorize (MCP clients with OAuth), grants at ${gw.url}/oauth/account`,
          `  Health:         ${gw.url}/healthz`,
          config.source === null
            ? `  Embedded default: demo agent "demo-support" (key: ${demoKeyPath(config)}); try: npx warden token issue --agent demo-support`
            : `  Config: ${config.source}`,
        ];
        // Handlers before the "running" line: a supervisor that signals as soon as it reads the line
        // must not meet the default action (SIGHUP and SIGTERM would kill the process outright).
        let stopping = false;
        const stop = async (signal: string) => {
          if (stopping) return;
          stopping = true;
          process.stderr.write(`warden: ${signal}: shutting down\n`);
          await gw.close();
          process.exit(0);
        };
        process.on('SIGINT', () => void stop('SIGINT'));
        process.on('SIGTERM', () => void stop('SIGTERM'));
        // Reload policy; an invalid set is logged and audited, and the running one stays.
        process.on('SIGHUP', () => void gw.policy.reload('sighup'));
        process.stderr.write(`${lines.join('\n')}\n`);
      } catch (e) {
        reportError(e);
        process.exit(2);
      }
    });
}
