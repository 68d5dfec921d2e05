import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { launchBrowser, signInThroughForm } from '../support/browser';
import { ComposeProject, requiredEnv, setupLinkIn } from '../support/compose';
import { root } from '../support/process';
import { adminInvites, setUpOrganisation } from './staff';

/**
 * An upgrade as IT admins do it: the previous version (its image, built by
 * scripts/test-image.sh, and its own docker-compose.yml) runs first and
 * makes data; then the admin replaces the compose file with this version's,
 * adds the settings it asks for to .env, and starts this version's image on
 * the same volumes, which migrates and has lost nothing.
 */
describe('upgrading from the previous version', function () {
  this.timeout(600_000);
  let project: ComposeProject;
  let browser: Browser;
  let base: string;

  const snapshot = async () => (await project.sql(
    "SELECT (SELECT string_agg(id::text || ':' || email || ':' || role || ':' || status, ',' ORDER BY id) FROM users), (SELECT string_agg(id::text || ':' || name, ',' ORDER BY id) FROM organisations), (SELECT count(*) FROM audit_events)",
  ))[0]!;

  before(async () => {
    ({ project, base } = await ComposeProject.create(requiredEnv('VCLERK_TEST_PREVIOUS_IMAGE'), requiredEnv('VCLERK_TEST_PREVIOUS_FILES')));
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    if (process.env.VCLERK_TEST_KEEP !== '1') await project?.destroy();
  });

  it(`the new image migrates the previous version's data (${process.env.VCLERK_TEST_PREVIOUS_VERSION ?? 'previous'}) and keeps all of it`, async () => {
    await project.mustCompose(['up', '-d', '--no-build']);
    await project.waitHealthy('app');
    const link = setupLinkIn(await project.mustCompose(['logs', '--no-color', 'app']));
    assert.ok(link, 'the previous version logged its setup link');
    const admin = await setUpOrganisation(await browser.newPage(), link, 'Upgrade Insurance');
    const clerk = await adminInvites(admin, base, 'clerk');
    const migrations = fs.readdirSync(path.join(root, 'app', 'db', 'migrations')).filter((f) => /^\d{14}_.*\.ts$/.test(f));
    const appliedBefore = Number((await project.sql('SELECT count(*) FROM knex_migrations'))[0]![0]);
    assert.ok(appliedBefore < migrations.length, `the previous version applied ${appliedBefore} of ${migrations.length} migrations`);
    const before = await snapshot();

    await project.mustCompose(['down'], 180_000);
    project.set({ APP_IMAGE: requiredEnv('VCLERK_TEST_IMAGE') });
    project.useFilesOf(root);
    await project.mustCompose(['up', '-d', '--no-build']);
    await project.waitHealthy('app');

    assert.equal(Number((await project.sql('SELECT count(*) FROM knex_migrations'))[0]![0]), migrations.length, 'every migration applied');
    const status = await project.mustCompose(['exec', '-T', 'app', 'node', 'dist/app/cli.js', 'migrate', 'status']);
    assert.match(status, new RegExp(`^${migrations.length} applied, 0 pending$`, 'm'), status);
    const after = await snapshot();
    assert.equal(after[0], before[0], 'the users are unchanged');
    assert.equal(after[1], before[1], 'the organisations are unchanged');
    assert.ok(Number(after[2]) >= Number(before[2]), 'no audit event lost');
    for (const person of [admin, clerk]) {
      const page = await browser.newPage();
      await signInThroughForm(page, base, person.email, person.password);
      await page.close();
    }
  });
});
