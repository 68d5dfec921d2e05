import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { HOUSEKEEPING_QUEUE, scheduleHousekeeping } from '../app/start/housekeeping';
import { seedOrganisation, seedUser } from './support/accounts';
import { silentLogger } from './support/context';
import { useTestDatabase } from './support/database';
import { startTestJobs } from './support/jobs';

/** The quarter-hourly housekeeping, a cron job on the one job queue (it was a timer in the entry point). */
describe('housekeeping job', function () {
  this.timeout(60_000);
  const db = useTestDatabase();

  it('keeps a schedule every 15 minutes in the database; a run deletes expired sessions and ends calls whose link expired', async () => {
    const knex = db.current.knex;
    const org = await seedOrganisation(knex, 'Housekeeping Bank');
    const clerk = await seedUser(knex, org, 'clerk');
    await knex('sessions').insert([
      { sid: 'expired', data: '{}', expires_at: new Date(Date.now() - 60_000) },
      { sid: 'current', data: '{}', expires_at: new Date(Date.now() + 3_600_000) },
    ]);
    const [stale] = await knex('calls')
      .insert({ organisation_id: org.id, clerk_id: clerk.id, status: 'waiting', guest_token_hash: crypto.randomBytes(32).toString('hex'), guest_token_expires_at: new Date(Date.now() - 60_000) })
      .returning('id');
    const jobs = await startTestJobs(knex);
    try {
      const job = await scheduleHousekeeping(jobs, knex, silentLogger);
      const schedule = await knex('pgboss.schedule').where({ name: HOUSEKEEPING_QUEUE }).first('cron');
      assert.equal(schedule?.cron, '*/15 * * * *');
      assert.ok(await job.runSoon());
      let status = '';
      for (let i = 0; i < 150 && status !== 'ended'; i++) {
        status = (await knex('calls').where({ id: stale!.id }).first('status'))!.status;
        if (status !== 'ended') await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(status, 'ended');
      assert.deepEqual(await knex('sessions').orderBy('sid').pluck('sid'), ['current']);
    } finally {
      await jobs.stop();
    }
  });
});
