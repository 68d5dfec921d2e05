import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { JobQueue } from './queue';

/** A periodic job on pg-boss, started. */
export interface CronJob {
  jobs: JobQueue;
  /** Queues a run at once (tests, operators); answers the job id. */
  runSoon(): Promise<string | null>;
  stop(): Promise<void>;
}

/**
 * Starts a periodic job: its own pg-boss instance with the cron scheduler,
 * the worker for `queue`, and the schedule kept in the database (so it
 * survives restarts, and several instances run it once per tick). One run
 * at a time: `runSoon` queues with a singleton key, without retries.
 */
export async function startCronJob(options: {
  knex: Knex;
  log: Logger;
  queue: string;
  cron: string;
  run: () => Promise<void>;
  pollingIntervalSeconds?: number;
}): Promise<CronJob> {
  const jobs = new JobQueue(options.knex, options.log, { schedule: true, pollingIntervalSeconds: options.pollingIntervalSeconds });
  await jobs.start();
  await jobs.work(options.queue, options.run);
  await jobs.schedule(options.queue, options.cron);
  return {
    jobs,
    runSoon: () => jobs.send(options.queue, {}, { singletonKey: options.queue, retryLimit: 0 }),
    stop: () => jobs.stop(),
  };
}
