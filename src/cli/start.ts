/** `warden start`: run the gateway until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { startGateway } from '../server/gateway.js';
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
        const gw = await startGateway(config);
        const lines = [
          `Warden is running at ${gw.url}`,
          `  MCP endpoint:   ${gw.url}/mcp`,
          `  REST endpoint:  ${gw.url}/v1/tool-calls`,
          `  Token endpoint: ${gw.url}/oauth/token (client_credentials + private_key_jwt)`,
          `  Health:         ${gw.url}/healthz`,
          config.source === null
            ? `  Embedded default: demo agent "demo-support" (key: ${demoKeyPath(config)}); try: npx warden token issue --agent demo-support`
            : `  Config: ${config.source}`,
        ];
        process.stderr.write(`${lines.join('\n')}\n`);
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
      } catch (e) {
        reportError(e);
        process.exit(2);
      }
    });
}
