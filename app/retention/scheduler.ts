import type { Knex } from 'knex';
import { scheduleCronJob, type CronJob } from '../jobs/cron';
import type { JobQueue } from '../jobs/queue';
import type { Logger } from '../core/logger';
import { purgeClosedOrganisations } from '../closure/purge';
import { runRetention } from './run';

export const RETENTION_QUEUE = 'retention.run';
/** Every hour, at minute 17 (away from the full hour, when other jobs tend to run). */
export const RETENTION_CRON = '17 * * * *';

export type RetentionScheduler = CronJob;

/**
 * The retention job on the appliance's job queue (pg-boss): a cron schedule
 * kept in the database (so it survives restarts, and several instances run
 * it once per tick), and the worker that runs `runRetention` over every organisation, then
 * purges organisations closed 60 days ago (`purgeClosedOrganisations`). One run at
 * a time: the singleton key keeps a second one from queuing behind it.
 */
export async function startRetention(options: { jobs: JobQueue; knex: Knex; logger: Logger; dataDir: string; cron?: string }): Promise<RetentionScheduler> {
  const log = options.logger.child({ component: 'retention' });
  return scheduleCronJob(options.jobs, {
    log,
    queue: RETENTION_QUEUE,
    cron: options.cron ?? RETENTION_CRON,
    run: async () => {
      const receipts = await runRetention(options.knex, { dataDir: options.dataDir });
      const deleted = receipts.filter((r) => r.rows || r.anonymised || r.files);
      log.info({ organisations: new Set(receipts.map((r) => r.organisationId)).size, receipts: deleted.length, rows: deleted.reduce((n, r) => n + r.rows, 0), files: deleted.reduce((n, r) => n + r.files, 0) }, 'retention run finished');
      // Organisations closed 60 days ago: deleted or anonymised, with a receipt each.
      const purged = await purgeClosedOrganisations(options.knex, { dataDir: options.dataDir });
      if (purged.length) log.info({ organisations: purged.length }, 'closed organisations purged');
    },
  });
}
