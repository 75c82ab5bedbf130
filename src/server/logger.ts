/**
 * Operator logs: pino, JSON lines on stderr (stdout stays clean for CLI
 * output), with credentials redacted wherever they could appear.
 */
import { pino } from 'pino';

/** The logger type the server parts accept. */
export type Logger = pino.Logger;

/** A pino logger at `level` writing to stderr; tokens, keys and secrets are redacted. */
export function createLogger(level: pino.LevelWithSilent = 'info'): Logger {
  return pino(
    {
      name: 'warden',
      level,
      base: { pid: process.pid },
      redact: {
        paths: [
          'token',
          '*.token',
          'authorization',
          '*.authorization',
          'headers.authorization',
          'privateJwk',
          '*.privateJwk',
          'secret',
          '*.secret',
          'password',
          '*.password',
        ],
        censor: '[REDACTED]',
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that writes nothing (tests, the demo). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
