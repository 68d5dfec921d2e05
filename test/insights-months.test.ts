import assert from 'node:assert/strict';
import { listMigrationNames, migratorConfig } from '../app/db/migrations';
import { seedOrganisation } from './support/accounts';
import { createTestDatabase, type TestDatabase } from './support/database';
import { monthDisagreements } from './support/insights-direct';

/**
 * Insights' monthly figures (issue 20): the migration that brings them
 * builds the months of the figures already kept, and taking it back leaves
 * the daily figures as they were.
 */
describe('insights: the monthly figures on upgrade', () => {
  let d: TestDatabase;
  const migration = '20261206110000_create_insight_months.ts';

  before(async function () {
    this.timeout(120000);
    d = await createTestDatabase({ migrated: false });
    const names = listMigrationNames();
    const at = names.findIndex((n) => migration.startsWith(n));
    assert.ok(at > 0, 'the migration is listed');
    for (let i = 0; i < at; i++) await d.knex.migrate.up(migratorConfig);
  });
  after(async () => d?.drop());

  it('builds the months of the days kept before it, and its rollback keeps the days', async () => {
    const org = await seedOrganisation(d.knex, 'Upgrade Bank');
    const clerk = '6a0d1c52-8f4e-4d2b-9a55-0c1e2f3a4b5c';
    const day = (date: string, clerkId: string | null, durations: Record<string, number>, hours: number[]) => ({
      organisation_id: org.id, day: date, clerk_id: clerkId, calls_started: hours.reduce((a, b) => a + b, 0), calls_completed: 2, durations: JSON.stringify(durations), waits: JSON.stringify({ 7: 1, 95: 2 }), queue_answered: 3,
      hours: hours.concat(Array<number>(24 - hours.length).fill(0)), available_seconds: 3600,
    });
    await d.knex('insight_days').insert([
      day('2026-09-29', clerk, { 61: 1, 404: 1 }, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]),
      day('2026-09-30', clerk, { 404: 1, 1234: 1 }, [0, 0, 0, 0, 0, 0, 0, 0, 3]),
      day('2026-10-02', clerk, { 3999: 2 }, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4]),
      day('2026-10-02', null, {}, []),
    ]);
    await d.knex('insight_products').insert([
      { organisation_id: org.id, day: '2026-09-29', product_key: 'SKU-1', name: 'Old name', shown: 2, favourited: 1 },
      { organisation_id: org.id, day: '2026-09-30', product_key: 'SKU-1', name: 'New name', shown: 1, favourited: 0 },
    ]);
    const days = async () => d.knex('insight_days').orderBy(['day', 'clerk_id']).select(d.knex.raw('day::text'), 'clerk_id', 'durations', 'hours');
    const before = await days();

    await d.knex.migrate.up(migratorConfig);
    assert.deepEqual(await monthDisagreements(d.knex, org.id), []);
    const months = await d.knex('insight_months').orderBy(['month', 'clerk_id']).select(d.knex.raw('month::text'), 'clerk_id', 'calls_started', 'durations', 'waits');
    assert.deepEqual(months, [
      { month: '2026-09-01', clerk_id: clerk, calls_started: 6, durations: { 61: 1, 400: 2, 1230: 1 }, waits: { 7: 2, 95: 4 } },
      { month: '2026-10-01', clerk_id: clerk, calls_started: 4, durations: { 3900: 2 }, waits: { 7: 1, 95: 2 } },
      { month: '2026-10-01', clerk_id: null, calls_started: 0, durations: {}, waits: { 7: 1, 95: 2 } },
    ]);
    assert.deepEqual(await d.knex('insight_product_months').select(d.knex.raw('month::text'), 'product_key', 'name', 'shown', 'favourited'), [{ month: '2026-09-01', product_key: 'SKU-1', name: 'New name', shown: 3, favourited: 1 }]);

    await d.knex.migrate.down(migratorConfig);
    assert.equal((await d.knex.raw(`SELECT to_regclass('public.insight_months') AS t`)).rows[0].t, null);
    assert.deepEqual(await days(), before);
  });
});
