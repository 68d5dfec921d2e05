/**
 * Single sign-on benchmark: what a directory sign-in and the periodic
 * directory check cost, against a real OpenLDAP (Debian's slapd, started
 * here on 127.0.0.1 as the tests start it).
 *
 *   npx tsx bench/sso.ts [rounds] [checked users]
 *
 * Sign-in: `rounds` (default 40) LDAP sign-ins (POST /sso/<slug>/ldap:
 * service bind, search, the person's bind, groups, provisioning, session,
 * audit) side by side, in turns, with the baseline, the password sign-in
 * (POST /login: argon2id), both through the app factory after a warm-up;
 * median, p95 and the ratio are printed. Directory check: `checked users`
 * (default 200) people signed in once through LDAP, then one run of the
 * periodic check (a lookup by stable id per person), timed: total and per
 * person. Everything stays on 127.0.0.1 and stops by itself.
 */
import { performance } from 'node:perf_hooks';
import request from 'supertest';
import { SsoSecrets } from '../app/sso/provider-settings';
import { runDirectoryChecks } from '../app/sso/directory-check';
import { anonymous, csrfFrom, PASSWORD, seedOrganisation, seedUser } from '../test/support/accounts';
import { buildApp, TEST_SECRET } from '../test/support/context';
import { createTestDatabase, startTestServer, stopTestServer } from '../test/support/database';
import { BASE_DN, PEOPLE, SERVICE_DN, groupDn, startSlapd } from '../test/support/slapd';
import { seedSsoProvider } from '../test/support/sso';

const ROUNDS = Number(process.argv[2] ?? 40);
const CHECKED = Number(process.argv[3] ?? 200);

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};

async function main(): Promise<void> {
  await startTestServer();
  const db = await createTestDatabase();
  const slapd = await startSlapd();
  try {
    const org = await seedOrganisation(db.knex, 'Bench Directory Bank');
    const provider = await seedSsoProvider(db.knex, org.id, 'ldap', {
      settings: { url: slapd.url, bindDn: SERVICE_DN, baseDn: BASE_DN, timeoutMs: 5000 },
      secret: slapd.servicePassword,
      checkMinutes: 60,
      mappings: [{ directory_group: groupDn('vclerk-clerks'), role: 'clerk' }],
    });
    const clerk = await seedUser(db.knex, org, 'clerk');
    const app = buildApp(db);

    const ldapSignIn = async (uid: string, password: string): Promise<number> => {
      const agent = request.agent(app);
      const page = await agent.get(`/sso/${org.slug}/ldap`).expect(200);
      const started = performance.now();
      const res = await agent.post(`/sso/${org.slug}/ldap`).type('form').send({ _csrf: csrfFrom(page.text), username: uid, password });
      const ms = performance.now() - started;
      if (res.status !== 303) throw new Error(`LDAP sign-in of ${uid} answered ${res.status}`);
      return ms;
    };
    const passwordSignIn = async (): Promise<number> => {
      const { agent, csrf } = await anonymous(app);
      const started = performance.now();
      const res = await agent.post('/login').type('form').send({ _csrf: csrf, email: clerk.email, password: PASSWORD });
      const ms = performance.now() - started;
      if (res.status !== 303) throw new Error(`password sign-in answered ${res.status}`);
      return ms;
    };

    for (let i = 0; i < 3; i++) {
      await ldapSignIn('bob', PEOPLE.bob!.password);
      await passwordSignIn();
    }
    const times = { ldap: [] as number[], password: [] as number[] };
    for (let i = 0; i < ROUNDS; i++) {
      times.ldap.push(await ldapSignIn('bob', PEOPLE.bob!.password));
      times.password.push(await passwordSignIn());
    }
    const row = (label: string, ms: number[]) => `${label.padEnd(34)} ${percentile(ms, 50).toFixed(1).padStart(8)} ${percentile(ms, 95).toFixed(1).padStart(8)}`;
    console.log(`\n${ROUNDS} sign-ins each, in turns (ms)            median      p95`);
    console.log(row('LDAP (bind, search, bind, groups)', times.ldap));
    console.log(row('baseline: password (argon2id)', times.password));
    console.log(`ratio LDAP / password: median ${(percentile(times.ldap, 50) / percentile(times.password, 50)).toFixed(2)}, p95 ${(percentile(times.ldap, 95) / percentile(times.password, 95)).toFixed(2)}`);

    // The periodic check over CHECKED linked people.
    const setupStarted = performance.now();
    for (let i = 0; i < CHECKED; i++) {
      const uid = `bench${i}`;
      await slapd.addUser({ uid, cn: `Bench ${i}`, mail: `${uid}@example.org`, password: `Bench-Secret-${i}`, groups: ['vclerk-clerks'] });
      await ldapSignIn(uid, `Bench-Secret-${i}`);
    }
    console.log(`\n${CHECKED} people added to the directory and signed in once in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);
    const secrets = new SsoSecrets(TEST_SECRET);
    await db.knex('sso_providers').where({ id: provider.id }).update({ checked_at: null });
    const started = performance.now();
    const [report] = (await runDirectoryChecks(db.knex, secrets)).filter((r) => r.providerId === provider.id);
    const ms = performance.now() - started;
    console.log(`directory check: ${report?.checked} people looked up, ${report?.deprovisioned} deprovisioned, in ${ms.toFixed(0)} ms (${(ms / Math.max(1, report?.checked ?? 1)).toFixed(2)} ms a person)`);
  } finally {
    await slapd.stop();
    await db.drop();
    await stopTestServer();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
