import pino, { type Logger } from 'pino';
import type { Config } from '../../config';

export type { Logger };

/**
 * Paths that never reach the log. Keys that may carry secrets are masked
 * wherever they appear one or two levels deep (pino's wildcards).
 */
export const redactPaths = [
  'req.headers.cookie',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  ...['password', 'newPassword', 'token', 'secret', 'apiKey', 'databaseUrl', 'databaseOwnerUrl', 'sessionSecret', 'connectionString'].flatMap(
    (key) => [key, `*.${key}`, `*.*.${key}`],
  ),
];

export function createLogger(config: Pick<Config, 'logLevel'>, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { app: 'vclerk' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
