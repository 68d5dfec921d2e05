import assert from 'node:assert/strict';
import { roles, type Role } from '../app/access/caller';
import { routes, type Route, type RouteDeps } from '../app/routes';
import { anonymous, seedOrganisation, seedUser, signIn, type Browser, type SeededUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/** Every route of the table, with its guard; the matrix below covers them all. */
function table(): Route[] {
  return routes({} as RouteDeps);
}

function concrete(path: string, id: string): string {
  return path.replace(':imageId', id).replace(':id', id).replace(':token', 'x'.repeat(43));
}

describe('access control over the whole route table', () => {
  const db = useTestDatabase();
  const browsers = new Map<Role, Browser>();
  let target: SeededUser;
  let foreignTarget: SeededUser;
  let foreignAdmin: Browser;
  let app: ReturnType<typeof buildApp>;

  before(async () => {
    app = buildApp(db.current);
    const org = await seedOrganisation(db.current.knex, 'Matrix Bank');
    const other = await seedOrganisation(db.current.knex, 'Other Insurer');
    for (const role of roles) browsers.set(role, await signIn(app, await seedUser(db.current.knex, org, role)));
    target = await seedUser(db.current.knex, org, 'clerk', { name: 'Target Clerk' });
    foreignTarget = await seedUser(db.current.knex, other, 'clerk', { name: 'Foreign Clerk' });
    await seedUser(db.current.knex, other, 'admin');
    foreignAdmin = await signIn(app, await seedUser(db.current.knex, other, 'admin'));
  });

  it('every route declares who may use it', () => {
    for (const route of table()) assert.ok(route.access, `${route.method} ${route.path}`);
  });

  for (const route of table().filter((r) => r.access !== 'public')) {
    it(`${route.method.toUpperCase()} ${route.path}: anonymous visitors are refused`, async () => {
      const { agent, csrf } = await anonymous(app);
      const path = concrete(route.path, target.id);
      if (route.method === 'get') {
        await agent.get(path).set('Accept', 'text/html').expect(303).expect('Location', /^\/login\?return=/);
        await agent.get(path).set('Accept', 'application/json').expect(401);
      } else {
        const res = await agent[route.method](path).set('X-CSRF-Token', csrf).set('Accept', 'application/json').expect(401);
        assert.equal(res.body.error.code, 'unauthenticated');
      }
    });

    if (Array.isArray(route.access)) {
      const allowed = route.access as readonly Role[];
      for (const role of roles.filter((r) => !allowed.includes(r))) {
        it(`${route.method.toUpperCase()} ${route.path}: the ${role} role is refused and audited`, async () => {
          const { agent, csrf } = browsers.get(role)!;
          const before = await db.current.knex('users').where({ id: target.id }).first('role', 'status');
          const res = await agent[route.method](concrete(route.path, target.id)).set('X-CSRF-Token', csrf).set('Accept', 'application/json').send({ role: 'admin' });
          assert.equal(res.status, 403);
          assert.equal(res.body.error.code, 'forbidden');
          assert.deepEqual(await db.current.knex('users').where({ id: target.id }).first('role', 'status'), before, 'nothing changed');
        });
      }
    }
  }

  it('role refusals are in the audit trail', async () => {
    const events = await db.current.knex('audit_events').where({ action: 'security.role_denied' });
    assert.ok(events.length > 0);
    assert.ok(events.every((e) => e.ip && e.details.path));
  });

  for (const route of table().filter((r) => r.path.startsWith('/admin/users/:id'))) {
    it(`${route.method.toUpperCase()} ${route.path}: another organisation's id is not found, changes nothing, and is audited`, async () => {
      const { agent, csrf } = browsers.get('admin')!;
      const before = await db.current.knex('users').where({ id: foreignTarget.id }).first('role', 'status', 'password_hash');
      const count = await db.current.knex('audit_events').where({ action: 'security.cross_organisation_denied' }).count({ n: '*' });
      const res = await agent[route.method](concrete(route.path, foreignTarget.id)).set('X-CSRF-Token', csrf).set('Accept', 'application/json').send({ role: 'admin' });
      assert.equal(res.status, 404);
      assert.equal(res.body.error.code, 'not_found');
      assert.deepEqual(await db.current.knex('users').where({ id: foreignTarget.id }).first('role', 'status', 'password_hash'), before);
      const after = await db.current.knex('audit_events').where({ action: 'security.cross_organisation_denied' }).count({ n: '*' });
      assert.equal(Number(after[0]!.n), Number(count[0]!.n) + 2, 'in the prober\'s organisation and in the target\'s');
    });
  }

  it('an admin\'s user list shows only their own organisation', async () => {
    const own = await browsers.get('admin')!.agent.get('/admin/users').expect(200);
    assert.match(own.text, /Target Clerk/);
    assert.doesNotMatch(own.text, /Foreign Clerk/);
    const foreign = await foreignAdmin.agent.get('/admin/users').expect(200);
    assert.match(foreign.text, /Foreign Clerk/);
    assert.doesNotMatch(foreign.text, /Target Clerk/);
  });

  it('a malformed id is a plain 404', async () => {
    await browsers.get('admin')!.agent.get('/admin/users/not-a-uuid').set('Accept', 'application/json').expect(404);
  });
});
