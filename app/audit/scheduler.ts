import type { Knex } from 'knex';
import { JobQueue } from '../jobs/queue';
import type { Logger } from '../logger';
import { raiseChainAlarm } from './chain-alarm';
import { AuditCheckpoints } from './checkpoints';
import { chainOf } from './service';

export const AUDIT_VERIFY_QUEUE = 'audit.verify';
/** Every hour at minute 41 (apart from retention's 17). */
export const AUDIT_VERIFY_CRON = '41 * * * *';

export interface AuditVerification {
  jobs: JobQueue;
  /** Queues a run at once (tests, operators); answers the job id. */
  runSoon(): Promise<string | null>;
  stop(): Promise<void>;
}

/**
 * Verifies every audit chain on a schedule (pg-boss cron, like retention):
 * each organisation's and the appliance-wide one, each against its signed
 * checkpoints (app/audit/checkpoints.ts); an intact chain gets a new
 * checkpoint of its head. A broken chain or one that does not match a
 * checkpoint is logged as an error at every run, gets no new checkpoint, and
 * is audited as `security.audit_chain_broken` in its own trail (once a day
 * per unchanged finding; chain-alarm.ts).
 */
export async function startAuditVerification(options: { knex: Knex; logger: Logger; dataDir: string; cron?: string; pollingIntervalSeconds?: number }): Promise<AuditVerification> {
  const log = options.logger.child({ component: 'audit-verify' });
  const jobs = new JobQueue(options.knex, log, { schedule: true, pollingIntervalSeconds: options.pollingIntervalSeconds });
  await jobs.start();
  await jobs.work(AUDIT_VERIFY_QUEUE, async () => {
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
    }
    for (const c of checks.filter((check) => !check.intact)) {
      await raiseChainAlarm(options.knex, c.chain === chainOf(null) ? null : c.chain, c).catch((err: unknown) => log.error({ err, chain: c.chain }, 'could not audit a failed chain check'));
    }
    log.info({ chains: checks.length, intact: checks.filter((c) => c.intact).length, anchored }, 'audit chains verified');
  });
  await jobs.schedule(AUDIT_VERIFY_QUEUE, options.cron ?? AUDIT_VERIFY_CRON);
  return {
    jobs,
    runSoon: () => jobs.send(AUDIT_VERIFY_QUEUE, {}, { singletonKey: 'audit-verify', retryLimit: 0 }),
    stop: () => jobs.stop(),
  };
}
