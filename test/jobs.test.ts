import assert from 'node:assert/strict';
import type { Knex } from 'knex';
import { createKnex } from '../app/db/connection';
import { JobQueue } from '../app/jobs/queue';
import { silentLogger } from './support/context';
import { useTestDatabase } from './support/database';

/**
 * The job queue makes a queue (a pg-boss partition table) the first time a
 * name is used. Its first `work` and `send` often come at once, in one
 * process (a feature's start registers its worker and queues its first job)
 * and across nodes (every node starts the same features at the same time).
 * Two creations of one new queue used to deadlock in PostgreSQL (each holds
 * a lock on `pgboss.queue` the other's foreign key needs); the loser's
 * error was lost in a `work` nobody awaited, so that worker never ran
 * (found by CI: a job waited 120 s for a worker that was never started).
 */
describe('job queue: creating a queue', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  // The nodes stop in this inner describe's `after`, before the database is dropped.
  describe('three nodes on one database', () => nodes(db));
});

function nodes(db: ReturnType<typeof useTestDatabase>): void {
  const pools: Knex[] = [];
  const queues: JobQueue[] = [];

  before(async () => {
    for (let i = 0; i < 3; i++) {
      const knex = createKnex(db.current.url, 4);
      pools.push(knex);
      const queue = new JobQueue(knex, silentLogger, { pollingIntervalSeconds: 0.5 });
      await queue.start();
      queues.push(queue);
    }
  });

  after(async () => {
    for (const queue of queues) await queue.stop(1000);
    for (const knex of pools) await knex.destroy();
  });

  it('work and send of a new queue at once, in one process, both succeed and the job runs', async () => {
    for (let round = 0; round < 5; round++) {
      const name = `jobs.test.local.${round}`;
      let resolveRan!: (n: number) => void;
      const ran = new Promise<number>((resolve) => (resolveRan = resolve));
      const [, id] = await Promise.all([
        queues[0]!.work<{ n: number }>(name, async (job) => resolveRan(job.data.n)),
        queues[0]!.send(name, { n: round }),
      ]);
      assert.ok(id, `round ${round}: the job was queued`);
      assert.equal(await ran, round);
    }
  });

  it('three nodes making the same new queue at once all succeed, and the queue exists once', async () => {
    for (let round = 0; round < 3; round++) {
      const name = `jobs.test.nodes.${round}`;
      const results = await Promise.allSettled(queues.map((queue, i) => (i === 0 ? queue.send(name, { round }) : queue.backlog(name))));
      const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
      assert.deepEqual(failed.map((r) => String(r.reason?.message ?? r.reason)), [], `round ${round}`);
      const rows = await db.current.knex('pgboss.queue').where({ name }).count<{ count: string }[]>('* as count');
      assert.equal(Number(rows[0]!.count), 1);
    }
  });
}
