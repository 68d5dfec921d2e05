import type { Knex } from 'knex';
import { scheduleCronJob, type CronJob } from '../jobs/cron';
import type { JobQueue } from '../jobs/queue';
import type { Logger } from '../core/logger';
import { raiseChainAlarm } from './chain-alarm';
import { AuditCheckpoints } from './checkpoints';
import { chainOf } from './service';

export const AUDIT_VERIFY_QUEUE = 'audit.verify';
/** Every hour at minute 41 (apart from retention's 17). */
export const AUDIT_VERIFY_CRON = '41 * * * *';

export type AuditVerification = CronJob;

/**
 * Verifies every audit chain on a schedule (a cron job on the job queue, like retention):
 * each organisation's and the appliance-wide one, each against its signed
 * checkpoints (app/audit/checkpoints.ts); an intact chain gets a new
 * checkpoint of its head. A broken chain or one that does not match a
 * checkpoint is logged as an error at every run, gets no new checkpoint, and
 * is audited as `security.audit_chain_broken` in its own trail (once a day
 * per unchanged finding; chain-alarm.ts).
 */
export async function startAuditVerification(options: { jobs: JobQueue; knex: Knex; logger: Logger; dataDir: string; cron?: string }): Promise<AuditVerification> {
  const log = options.logger.child({ component: 'audit-verify' });
  return scheduleCronJob(options.jobs, {
    log,
    queue: AUDIT_VERIFY_QUEUE,
    cron: options.cron ?? AUDIT_VERIFY_CRON,
    run: async () => {
      const { checks, anchored } = await new AuditCheckpoints(options.knex, options.dataDir).verifyAndAnchorAll();
      for (const c of checks.filter((check) => !check.intact)) {
        log.error(
          {
            chain: c.chain,
            broken: c.broken ?? null,
            checkpoint: c.mismatch ? { seq: c.mismatch.checkpoint.seq, createdAt: c.mismatch.checkpoint.created_at, reason: c.mismatch.reason } : null,
            mismatches: c.mismatches,
            invalidSignatures: c.invalidSignatures,
            missingFromDatabase: c.missingFromDatabase,
          },
          c.mismatch ? `audit chain does not match its checkpoint of ${c.mismatch.checkpoint.created_at}` : 'audit chain verification failed',
        );
        await raiseChainAlarm(options.knex, c.chain === chainOf(null) ? null : c.chain, c).catch((err: unknown) => log.error({ err, chain: c.chain }, 'could not audit a failed chain check'));
      }
      log.info({ chains: checks.length, intact: checks.filter((c) => c.intact).length, anchored }, 'audit chains verified');
    },
  });
}
