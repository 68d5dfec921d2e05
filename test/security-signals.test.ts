import assert from 'node:assert/strict';
import type { Express } from 'express';
import { AuditService } from '../app/audit/service';
import type { AuditAction } from '../app/audit/actions';
import { SecuritySignals, securitySignals } from '../app/compliance/security';
import request from 'supertest';
import { refusalsFor } from '../app/audit/refusals';
import { csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

const HOUR = 3_600_000;

describe('security signals', () => {
  const db = useTestDatabase();
  let app: Express;
  let org: SeededOrganisation;
  let compliance: Browser;
  const now = Date.now();

  async function seed(action: AuditAction, hoursAgo: number, ip = '198.51.100.9', organisationId = org.id): Promise<void> {
    await new AuditService(db.current.knex, () => new Date(now - hoursAgo * HOUR)).record({ organisationId, actor: { type: 'guest', label: 'someone' }, action, ip, details: { path: '/x' } });
  }

  before(async () => {
    app = buildApp(db.current);
    org = await seedOrganisation(db.current.knex, 'Signal Bank');
    const other = await seedOrganisation(db.current.knex, 'Signal Other');
    // Seeded in time order: the hash chain wants increasing times.
    await seed('auth.login_failed', 24 * 40);
    await seed('auth.login_failed', 24 * 20);
    await seed('auth.login_failed', 24 * 3);
    await seed('security.csrf_rejected', 24 * 3);
    await seed('auth.login_failed', 2, '198.51.100.77');
    await seed('auth.lockout', 1);
    await seed('api.refused', 1, '192.0.2.5', other.id);
    compliance = await signIn(app, await seedUser(db.current.knex, org, 'compliance'));
  });

  it('counts each kind in the last 24 hours, 7 days and 30 days, for the own organisation only', async () => {
    const counts = await new SecuritySignals(db.current.knex).counts(org.id, new Date(now + 1000));
    const of = (kind: string) => counts.find((c) => c.kind === kind)!;
    assert.deepEqual({ ...of('auth.login_failed') }, { kind: 'auth.login_failed', day: 1, week: 2, month: 3 });
    assert.deepEqual({ ...of('auth.lockout') }, { kind: 'auth.lockout', day: 1, week: 1, month: 1 });
    assert.deepEqual({ ...of('security.csrf_rejected') }, { kind: 'security.csrf_rejected', day: 0, week: 1, month: 1 });
    assert.equal(of('api.refused').month, 0);
    assert.equal(counts.length, securitySignals.length);
  });

  it('the page shows the counts and the latest events with IPs, filtered by kind', async () => {
    const page = await compliance.agent.get('/compliance/security').expect(200);
    assert.match(page.text, /data-kind="auth.login_failed">[\s\S]*?data-window="day">1<[\s\S]*?data-window="week">2<[\s\S]*?data-window="month">3</);
    assert.match(page.text, /198\.51\.100\.77/);
    assert.doesNotMatch(page.text, /192\.0\.2\.5/, 'another organisation\'s events stay out');
    const filtered = await compliance.agent.get('/compliance/security?kind=auth.lockout').expect(200);
    const events = /id="signal-events"[\s\S]*<\/table>/.exec(filtered.text)![0];
    assert.equal((events.match(/<tr>/g) ?? []).length - 1, 1, 'one lockout row');
    await compliance.agent.get('/compliance/security?kind=nonsense&page=x').expect(200);
  });

  it('sums aggregated refusal rows: seven wrong sign-ins count seven, in two rows (issue 13)', async () => {
    const knex = db.current.knex;
    const target = await seedOrganisation(knex, 'Signal Aggregate');
    const user = await seedUser(knex, target, 'clerk');
    const limited = buildApp(db.current, { env: { VCLERK_LOGIN_MAX_FAILURES_PER_ACCOUNT: '100', VCLERK_LOGIN_MAX_FAILURES_PER_IP: '100' } });
    const page = await request(limited).get('/login').expect(200);
    const cookie = String(page.headers['set-cookie']).split(';')[0]!;
    for (let i = 0; i < 7; i++) {
      await request(limited).post('/login').set('Cookie', cookie).type('form').send({ _csrf: csrfFrom(page.text), email: user.email, password: `wrong ${i}` }).expect(401);
    }
    const rowsNow = await knex('audit_events').where({ organisation_id: target.id, action: 'auth.login_failed' });
    assert.equal(rowsNow.length, 1, 'the first refusal of the source is written at once');
    await refusalsFor(knex).flush();
    const rows = await knex('audit_events').where({ organisation_id: target.id, action: 'auth.login_failed' }).orderBy('seq');
    assert.equal(rows.length, 2);
    assert.deepEqual([rows[1]!.details.aggregated, rows[1]!.details.count, rows[1]!.details.reasons], [true, 6, { wrong_password: 6 }]);
    assert.ok((rows[1]!.details.window_start as string) <= (rows[1]!.details.window_end as string));
    const counts = await new SecuritySignals(knex).counts(target.id);
    assert.deepEqual({ ...counts.find((c) => c.kind === 'auth.login_failed')! }, { kind: 'auth.login_failed', day: 7, week: 7, month: 7 });
  });

  it('clerks may not see it', async () => {
    const clerk = await signIn(app, await seedUser(db.current.knex, org, 'clerk'));
    await clerk.agent.get('/compliance/security').set('Accept', 'application/json').expect(403);
  });
});
