import type { Express } from 'express';
import pino from 'pino';
import { loadConfig, type Config } from '../../config';
import { createApp, type AppOptions } from '../../app/app';
import type { Logger } from '../../app/core/logger';
import type { TestDatabase } from './database';

export const TEST_SECRET = 'test-session-secret-0123456789abcdefghijklmnop';

export const silentLogger: Logger = pino({ level: 'silent' });

/** A validated configuration from the given variables only (never the developer's own environment). */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ VCLERK_LOG_LEVEL: 'silent', VCLERK_LOG_REQUESTS: 'false', ...env });
}

/** The real app, built by its factory against a test database. */
export function buildApp(db: TestDatabase, options: AppOptions & { env?: Record<string, string>; logger?: Logger } = {}): Express {
  return createApp({ config: testConfig(options.env), db: db.knex, logger: options.logger ?? silentLogger, sessionSecret: TEST_SECRET }, options);
}
