import assert from 'node:assert/strict';
import { forgetDiscovery } from '../../app/sso/oidc-client';
import { seedOrganisation, seedUser, PASSWORD } from '../support/accounts';
import { useAppInBrowser } from '../support/app-in-browser';
import { signInThroughForm } from '../support/browser';
import { useTestDatabase } from '../support/database';
import { adminConfiguresUnreachableDirectories } from '../support/sso-pages';

/**
 * The single sign-on admin page in a real browser (the same steps run
 * against the image in test/image/compose.image.ts): both methods saved
 * through the forms, secrets sealed and never shown, the Test buttons run
 * the directory clients, and /sso/<slug> offers both.
 */
describe('SSO: the admin page in a real browser', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  const app = useAppInBrowser(db);
  after(() => forgetDiscovery());

  it('configures LDAP and OpenID Connect, tests both, and offers them on the sign-in page', async () => {
    const org = await seedOrganisation(db.current.knex, 'Pages Bank');
    const admin = await seedUser(db.current.knex, org, 'admin');
    const page = await (await app.browser.newContext()).newPage();
    await signInThroughForm(page, app.base, admin.email, PASSWORD);
    const outcome = await adminConfiguresUnreachableDirectories(page, app.base);
    assert.equal(outcome.slug, org.slug);
    assert.match(outcome.ldapTest, /directory_unavailable/);
    assert.match(outcome.oidcTest, /directory_unavailable/);
    assert.doesNotMatch(outcome.ldapTest + outcome.oidcTest, /Service-Pw-1|Client-Secret-1/);
    assert.match(outcome.signInChoice, /Company directory/);
    assert.match(outcome.signInChoice, /Company login/);
    const rows = await db.current.knex('sso_providers').where({ organisation_id: org.id }).orderBy('kind');
    assert.deepEqual(rows.map((r) => [r.kind, r.enabled, Boolean(r.secret_sealed)]), [['ldap', true, true], ['oidc', true, true]]);
    assert.doesNotMatch(JSON.stringify(rows), /Service-Pw-1|Client-Secret-1/);
  });
});
