import type { Knex } from 'knex';
import PgBoss from 'pg-boss';
import type { Logger } from '../core/logger';

/** What a job handler gets: the job's id and data. */
export interface Job<T> {
  id: string;
  data: T;
}

export interface JobQueueOptions {
  /** How often idle workers look for new jobs (seconds, pg-boss allows 0.5 and up). */
  pollingIntervalSeconds?: number;
  /** Run pg-boss's cron scheduler in this instance (needed for `schedule`; off by default). */
  schedule?: boolean;
}

/** PostgreSQL's deadlock_detected, and how often a queue's creation is tried when it meets one. */
const DEADLOCK = '40P01';
const CREATE_ATTEMPTS = 5;

type SqlExecutor = { executeSql(text: string, values: unknown[]): Promise<{ rows: unknown[] }> };

/** pg-boss's database adapter over a knex pool: pg-boss runs its SQL on the app's own connections. */
function executorOf(knex: Knex): SqlExecutor {
  const client = knex.client as { acquireConnection(): Promise<{ query(text: string, values: unknown[]): Promise<{ rows: unknown[] }> }>; releaseConnection(c: unknown): Promise<void> };
  return {
    async executeSql(text: string, values: unknown[]) {
      const connection = await client.acquireConnection();
      try {
        return await connection.query(text, values ?? []);
      } finally {
        await client.releaseConnection(connection);
      }
    },
  };
}

/**
 * Creates or upgrades pg-boss's schema `pgboss` (DDL): run as the role
 * that owns the tables, at migration time (app/db/prepare.ts). The app's
 * own role then finds the schema current and only reads and writes it;
 * the queue functions that create a table per queue run as the owner
 * (SECURITY DEFINER, see grantAppRole in app/db/roles.ts).
 */
export async function installJobSchema(ownerKnex: Knex): Promise<void> {
  const boss = new PgBoss({ db: executorOf(ownerKnex), supervise: false, schedule: false, migrate: true });
  boss.on('error', () => undefined);
  await boss.start();
  await boss.stop({ graceful: false, close: false, wait: true });
}

/**
 * Background jobs in PostgreSQL (pg-boss, in its own schema `pgboss`):
 * jobs survive restarts, and a job whose worker died is retried. pg-boss
 * runs its SQL through the app's own knex pool, so it needs no connection
 * settings of its own (and works with the embedded PostgreSQL). The
 * appliance runs one for the whole process (app/start/phases.ts, with the
 * cron scheduler on): the recording finisher and the periodic jobs
 * (app/jobs/cron.ts) all work on it, and it stops as one step.
 */
export class JobQueue {
  private readonly boss: PgBoss;
  /** Each queue's creation, made once per process and shared by everyone who asks meanwhile. */
  private readonly queues = new Map<string, Promise<void>>();
  private started = false;

  constructor(private readonly knex: Knex, private readonly logger: Logger, private readonly options: JobQueueOptions = {}) {
    this.boss = new PgBoss({
      db: executorOf(knex),
      schedule: options.schedule === true,
      supervise: true,
    });
    // pg-boss keeps polling through a database outage (its workers catch, emit 'error' and go on), so it
    // resumes by itself once the database is back. Each poll of each queue fails meanwhile: log one
    // error per message and minute, not one every polling interval.
    const lastLogged = new Map<string, number>();
    this.boss.on('error', (err) => {
      const key = String(err?.message ?? err).replace(/\(Queue: .*\)$/, '');
      const now = Date.now();
      if (now - (lastLogged.get(key) ?? 0) < 60_000) return;
      if (lastLogged.size > 100) lastLogged.clear();
      lastLogged.set(key, now);
      logger.error({ err }, 'job queue error');
    });
  }

  async start(): Promise<void> {
    if (this.started) return;
    await this.boss.start();
    this.started = true;
  }

  /**
   * Makes the queue (a pg-boss partition table) the first time a name is
   * used. One creation per process, however many ask at once: the first
   * `work` and `send` of a feature come together. Across nodes, two
   * creations of one new queue deadlock in PostgreSQL (each holds a lock on
   * pgboss.queue that the other's foreign key needs) and PostgreSQL aborts
   * one: that one looks again and finds the queue made.
   */
  private queue(name: string): Promise<void> {
    let creation = this.queues.get(name);
    if (!creation) {
      creation = this.createQueue(name);
      this.queues.set(name, creation);
      creation.catch(() => this.queues.delete(name));
    }
    return creation;
  }

  private async createQueue(name: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (await this.boss.getQueue(name)) return;
      try {
        await this.boss.createQueue(name);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== DEADLOCK || attempt >= CREATE_ATTEMPTS) throw err;
      }
    }
  }

  /** Queues a job; `singletonKey` keeps one queued job per key. Answers the job id (null when it was a duplicate). */
  async send<T extends object>(name: string, data: T, options: { singletonKey?: string; retryLimit?: number; retryDelay?: number } = {}): Promise<string | null> {
    await this.queue(name);
    return this.boss.send(name, data, { retryLimit: 3, retryDelay: 10, retryBackoff: true, ...options });
  }

  /**
   * Runs `handler` for each job of that queue, one at a time per worker; a thrown error fails the
   * attempt (retried), logged to `log` (the feature's logger; the queue's own by default).
   */
  async work<T>(name: string, handler: (job: Job<T>) => Promise<void>, options: { log?: Logger } = {}): Promise<void> {
    const log = options.log ?? this.logger;
    await this.queue(name);
    await this.boss.work<T>(name, { batchSize: 1, pollingIntervalSeconds: this.options.pollingIntervalSeconds ?? 2 }, async (jobs) => {
      for (const job of jobs) {
        try {
          await handler({ id: job.id, data: job.data });
        } catch (err) {
          log.warn({ err, queue: name, jobId: job.id }, 'job failed');
          throw err;
        }
      }
    });
  }

  /**
   * Queues a job by a cron expression (UTC), kept in the database: it
   * survives restarts and fires once per tick across all instances. Needs
   * the `schedule` option; calling it again replaces the schedule.
   */
  async schedule<T extends object>(name: string, cron: string, data: T = {} as T): Promise<void> {
    if (!this.options.schedule) throw new Error('this job queue was made without the schedule option');
    await this.queue(name);
    await this.boss.schedule(name, cron, data, { tz: 'UTC', retryLimit: 0 });
  }

  /** Jobs of a queue not yet done (queued, retrying or running). */
  async backlog(name: string): Promise<number> {
    await this.queue(name);
    return this.boss.getQueueSize(name, { before: 'completed' });
  }

  /** Stops taking jobs and waits (up to timeoutMs) for running ones to finish. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.boss.stop({ graceful: true, close: false, timeout: timeoutMs, wait: true });
  }
}
