import assert from 'node:assert/strict';
import request from 'supertest';
import { SsoSecrets } from '../app/sso/provider-settings';
import { DIRECTORY_CHECK_QUEUE, runDirectoryChecks, startDirectoryCheck } from '../app/sso/directory-check';
import type { SsoProviderRow } from '../app/db/tables';
import { csrfFrom, seedOrganisation, type SeededOrganisation } from './support/accounts';
import { buildApp, silentLogger, TEST_SECRET } from './support/context';
import { useTestDatabase } from './support/database';
import { startTestJobs } from './support/jobs';
import { BASE_DN, PEOPLE, SERVICE_DN, groupDn, startSlapd, type Slapd } from './support/slapd';
import { seedSsoProvider } from './support/sso';

/**
 * The periodic directory check (issue 18): a person the LDAP directory no
 * longer has, or who left every mapped group, has their sessions ended
 * without signing in again, audited; a directory that cannot answer ends
 * nobody; each provider is checked at its own interval; the job is on the
 * appliance's job queue.
 */
describe('SSO: periodic directory check', function () {
  this.timeout(90_000);
  const db = useTestDatabase();
  let slapd: Slapd;
  let org: SeededOrganisation;
  let provider: SsoProviderRow;
  const knex = () => db.current.knex;
  const secrets = new SsoSecrets(TEST_SECRET);

  before(async function () {
    this.timeout(60_000);
    slapd = await startSlapd();
    org = await seedOrganisation(knex(), 'Checked Bank');
    provider = await seedSsoProvider(knex(), org.id, 'ldap', {
      settings: { url: slapd.url, bindDn: SERVICE_DN, baseDn: BASE_DN, timeoutMs: 3000 },
      secret: slapd.servicePassword,
      checkMinutes: 30,
      mappings: [
        { directory_group: groupDn('vclerk-admins'), role: 'admin' },
        { directory_group: groupDn('vclerk-clerks'), role: 'clerk' },
      ],
    });
  });

  after(async () => {
    await slapd?.stop();
  });

  async function signedIn(uid: string) {
    const agent = request.agent(buildApp(db.current));
    const page = await agent.get(`/sso/${org.slug}/ldap`).expect(200);
    const res = await agent.post(`/sso/${org.slug}/ldap`).type('form').send({ _csrf: csrfFrom(page.text), username: uid, password: PEOPLE[uid]!.password });
    assert.equal(res.status, 303, res.text);
    await agent.get('/dashboard').expect(200);
    const user = await knex()('users').where({ organisation_id: org.id, email: PEOPLE[uid]!.mail!.toLowerCase() }).first();
    assert.ok(user, `${uid} was provisioned`);
    return { agent, user: user as { id: string } };
  }
  const deprovisioned = (userId: string) => knex()('audit_events').where({ organisation_id: org.id, action: 'sso.deprovisioned', target_id: userId });
  const ours = (reports: Awaited<ReturnType<typeof runDirectoryChecks>>) => reports.filter((r) => r.providerId === provider.id);

  it('ends the sessions of a person removed from the mapped groups and of one deleted from the directory; the others keep theirs', async () => {
    const bob = await signedIn('bob');
    const dana = await signedIn('dana');
    const alice = await signedIn('alice');
    await slapd.removeFromGroup('vclerk-clerks', 'bob');
    await slapd.deleteUser('dana');
    try {
      const report = ours(await runDirectoryChecks(knex(), secrets))[0]!;
      assert.deepEqual({ ...report, organisationId: undefined, providerId: undefined }, { organisationId: undefined, providerId: undefined, checked: 3, deprovisioned: 2, unavailable: false });
      // bob and dana: signed out at once, audited with the reason; alice (still an admin) keeps her session.
      for (const gone of [bob, dana]) assert.match(String((await gone.agent.get('/dashboard')).headers.location), /^\/login/);
      await alice.agent.get('/dashboard').expect(200);
      const [bobEvent] = await deprovisioned(bob.user.id);
      const [danaEvent] = await deprovisioned(dana.user.id);
      assert.deepEqual([bobEvent?.details.reason, bobEvent?.details.periodic, bobEvent?.details.sessions], ['no_mapped_group', true, 1]);
      assert.equal(danaEvent?.details.reason, 'not_in_directory');
      assert.equal((await deprovisioned(alice.user.id)).length, 0);
      // Checked now: not due again before its 30 minutes, then due.
      assert.ok((await knex()('sso_providers').where({ id: provider.id }).first())?.checked_at);
      assert.deepEqual(ours(await runDirectoryChecks(knex(), secrets)), []);
      // Then due: bob and dana, already deprovisioned, are neither looked up nor audited again.
      const later = ours(await runDirectoryChecks(knex(), secrets, new Date(Date.now() + 31 * 60_000)));
      assert.deepEqual(later.map((r) => [r.checked, r.deprovisioned]), [[1, 0]]);
      assert.equal((await deprovisioned(bob.user.id)).length, 1);
      // bob is refused at his next sign-in too (no mapped group).
      const again = request.agent(buildApp(db.current));
      const page = await again.get(`/sso/${org.slug}/ldap`).expect(200);
      assert.equal((await again.post(`/sso/${org.slug}/ldap`).type('form').send({ _csrf: csrfFrom(page.text), username: 'bob', password: PEOPLE.bob!.password })).status, 403);
      // Back in the group, bob signs in again: the mark is cleared, and the check looks at him again.
      await slapd.addToGroup('vclerk-clerks', 'bob');
      await signedIn('bob');
      assert.equal((await knex()('users').where({ id: bob.user.id }).first())?.sso_deprovisioned_at, null);
      const after = ours(await runDirectoryChecks(knex(), secrets, new Date(Date.now() + 62 * 60_000)));
      assert.deepEqual(after.map((r) => [r.checked, r.deprovisioned]), [[2, 0]]);
    } finally {
      await slapd.addToGroup('vclerk-clerks', 'bob').catch(() => undefined);
      await slapd.addUser(PEOPLE.dana!);
    }
  });

  it('a directory that cannot answer ends nobody and is tried again at the next tick', async () => {
    const bob = await signedIn('bob');
    const down = await seedOrganisation(knex(), 'Down Bank');
    const unreachable = await seedSsoProvider(knex(), down.id, 'ldap', {
      settings: { url: 'ldap://127.0.0.1:9', bindDn: SERVICE_DN, baseDn: BASE_DN, timeoutMs: 1000 },
      secret: slapd.servicePassword,
      checkMinutes: 5,
      mappings: [{ directory_group: groupDn('vclerk-clerks'), role: 'clerk' }],
    });
    // A user of that organisation linked to the unreachable directory (as a sign-in would have made).
    const [linked] = await knex()('users')
      .insert({ organisation_id: down.id, email: 'linked@example.org', name: 'Linked', role: 'clerk', status: 'active', sso_provider_id: unreachable.id, sso_subject: 'x-subject' })
      .returning('id');
    const reports = await runDirectoryChecks(knex(), secrets, new Date(Date.now() + 31 * 60_000));
    const downReport = reports.find((r) => r.providerId === unreachable.id);
    assert.deepEqual([downReport?.unavailable, downReport?.deprovisioned], [true, 0]);
    assert.equal((await knex()('audit_events').where({ organisation_id: down.id, action: 'sso.deprovisioned' })).length, 0);
    assert.equal((await knex()('sso_providers').where({ id: unreachable.id }).first())?.checked_at, null, 'not marked checked: retried at the next tick');
    assert.ok(linked);
    await bob.agent.get('/dashboard').expect(200);
  });

  it('runs as a cron job every minute on the job queue', async () => {
    const jobs = await startTestJobs(knex());
    try {
      const job = await startDirectoryCheck({ jobs, knex: knex(), logger: silentLogger, secrets });
      const schedule = await knex()('pgboss.schedule').where({ name: DIRECTORY_CHECK_QUEUE }).first('cron');
      assert.equal(schedule?.cron, '* * * * *');
      const before = new Date(Date.now() - 1000);
      await knex()('sso_providers').where({ id: provider.id }).update({ checked_at: null });
      assert.ok(await job.runSoon());
      let checkedAt: Date | null = null;
      for (let i = 0; i < 150 && !checkedAt; i++) {
        checkedAt = (await knex()('sso_providers').where({ id: provider.id }).first())?.checked_at ?? null;
        if (!checkedAt) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(checkedAt && checkedAt >= before, 'the job checked the provider');
    } finally {
      await jobs.stop();
    }
  });
});
