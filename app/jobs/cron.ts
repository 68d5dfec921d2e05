import type { Logger } from '../core/logger';
import type { JobQueue } from './queue';

/** A periodic job on the appliance's job queue. */
export interface CronJob {
  queue: string;
  /** Queues a run at once (tests, operators); answers the job id (null while one is queued). */
  runSoon(): Promise<string | null>;
}

/**
 * Registers a periodic job on the job queue (which must run pg-boss's cron
 * scheduler: `schedule: true`): the worker for `queue`, and the schedule kept
 * in the database (so it survives restarts, and several instances run it
 * once per tick). One run at a time: `runSoon` queues with a singleton key,
 * without retries. The job stops with the queue.
 */
export async function scheduleCronJob(jobs: JobQueue, options: { queue: string; cron: string; run: () => Promise<void>; log?: Logger }): Promise<CronJob> {
  await jobs.work(options.queue, options.run, { log: options.log });
  await jobs.schedule(options.queue, options.cron);
  return {
    queue: options.queue,
    runSoon: () => jobs.send(options.queue, {}, { singletonKey: options.queue, retryLimit: 0 }),
  };
}
