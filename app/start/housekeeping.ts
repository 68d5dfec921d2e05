import type { Knex } from 'knex';
import { pruneExpiredSessions } from '../access/session-store';
import { CallService } from '../calls/service';
import { scheduleCronJob, type CronJob } from '../jobs/cron';
import { aggregateInsights } from '../insights/aggregate';
import { pruneUsedValues } from '../sso/seen-once';
import type { JobQueue } from '../jobs/queue';
import type { Logger } from '../core/logger';

export const HOUSEKEEPING_QUEUE = 'housekeeping';
/** Every 15 minutes. */
export const HOUSEKEEPING_CRON = '*/15 * * * *';

/**
 * The quarter-hourly housekeeping, a cron job on the job queue: expired
 * sessions are deleted, waiting calls whose customer link expired are
 * ended, single sign-on's used values whose window ended are deleted, and
 * ended calls are counted into Insights' daily figures.
 * Each failing is logged; the others still run.
 */
export function scheduleHousekeeping(jobs: JobQueue, knex: Knex, logger: Logger): Promise<CronJob> {
  return scheduleCronJob(jobs, {
    queue: HOUSEKEEPING_QUEUE,
    cron: HOUSEKEEPING_CRON,
    log: logger,
    run: async () => {
      await pruneExpiredSessions(knex).catch((err: unknown) => logger.warn({ err }, 'could not prune expired sessions'));
      await new CallService(knex).expireStale().catch((err: unknown) => logger.warn({ err }, 'could not expire stale calls'));
      await pruneUsedValues(knex).catch((err: unknown) => logger.warn({ err }, 'could not prune used sign-in values'));
      await aggregateInsights(knex).catch((err: unknown) => logger.warn({ err }, 'could not count calls for insights'));
    },
  });
}
