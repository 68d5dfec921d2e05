import type { Knex } from 'knex';
import type { Config } from '../../config';
import type { Logger } from '../core/logger';
import { SetupService } from './service';

/** Where the appliance can be reached, for links printed to the log or the shell. */
export function baseUrl(config: Pick<Config, 'publicUrl' | 'host' | 'port'> & Partial<Pick<Config, 'tls'>>): string {
  if (config.publicUrl) return config.publicUrl;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  return `${config.tls && config.tls !== 'off' ? 'https' : 'http'}://${host}:${config.port}`;
}

/**
 * First run: while no organisation exists, every start prints a fresh
 * one-time setup link (older ones stop working). It is the only way in, so
 * it goes to the log on purpose; it works once and expires.
 */
export async function announceSetupLink(knex: Knex, config: Config, logger: Logger): Promise<void> {
  const issued = await new SetupService(knex).issueLink(config.setupLinkHours);
  if (!issued) return;
  const link = `${baseUrl(config)}/setup/${issued.token}`;
  logger.warn({ setupLink: link, expiresAt: issued.expiresAt.toISOString() }, `VClerk is not set up yet. Open this one-time link to create the first organisation and its administrator: ${link}`);
}
