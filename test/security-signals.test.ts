import assert from 'node:assert/strict';
import type { Express } from 'express';
import { AuditService } from '../app/audit/service';
import type { AuditAction } from '../app/audit/actions';
import { SecuritySignals } from '../app/compliance/security';
import { seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
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
    assert.equal(counts.length, 8);
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

  it('clerks may not see it', async () => {
    const clerk = await signIn(app, await seedUser(db.current.knex, org, 'clerk'));
    await clerk.agent.get('/compliance/security').set('Accept', 'application/json').expect(403);
  });
});
