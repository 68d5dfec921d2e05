import type { Knex } from 'knex';
import { JobQueue } from '../../app/jobs/queue';
import { silentLogger } from './context';

/** The appliance's one job queue as the jobs start phase makes it (cron scheduler on), started, polling fast. */
export async function startTestJobs(knex: Knex): Promise<JobQueue> {
  const jobs = new JobQueue(knex, silentLogger, { schedule: true, pollingIntervalSeconds: 0.5 });
  await jobs.start();
  return jobs;
}
