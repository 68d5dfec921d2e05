import path from 'node:path';
import type { Config } from '../../config';
import { readOrCreateSecret } from '../lifecycle/secrets';

/**
 * The session-signing secret: VCLERK_SESSION_SECRET when set, else one
 * generated at first start and kept in <dataDir>/session.secret (0600), so
 * sessions survive restarts.
 */
export function resolveSessionSecret(config: Pick<Config, 'sessionSecret' | 'dataDir'>): string {
  if (config.sessionSecret) return config.sessionSecret;
  return readOrCreateSecret(path.resolve(config.dataDir, 'session.secret'), 48);
}
