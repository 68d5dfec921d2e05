import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CHARTS } from '../../app/insights/figures';
import { recordingDir } from '../../app/recordings/storage';
import { assertFlowing, clerkStartsCall, launchBrowser, signInThroughForm } from '../support/browser';
import { ComposeProject, requiredEnv, setupLinkIn, sleep } from '../support/compose';
import { adminConfiguresUnreachableDirectories } from '../support/sso-pages';
import { adminInvites, setUpOrganisation, type Staff } from './staff';

/**
 * docker-compose.yml as an IT admin runs it (scripts/test-image.sh builds
 * the image first): the database, then the app, healthy; the setup link in
 * the logs; a call between a clerk and a customer in headless Chromium on
 * this machine through the published web and media ports; a recording in
 * the data volume; the Insights page; a backup; down and up again; uid
 * 10001 on a read-only root file system; a clean stop.
 */
describe('docker-compose.yml, started for real', function () {
  this.timeout(600_000);
  let project: ComposeProject;
  let base: string;
  let admin: Staff;
  let clerk: Staff;
  let browsers: Browser[] = [];
  let recording: { id: string; organisationId: string; file: string; sha256: string };

  const counts = async () => (await project.sql(
    'SELECT (SELECT count(*) FROM organisations), (SELECT count(*) FROM users), (SELECT count(*) FROM calls), (SELECT count(*) FROM recordings), (SELECT count(*) FROM audit_events)',
  ))[0]!.map(Number);

  before(async () => {
    ({ project, base } = await ComposeProject.create(requiredEnv('VCLERK_TEST_IMAGE')));
  });

  after(async () => {
    await Promise.allSettled(browsers.map((b) => b.close()));
    if (process.env.VCLERK_TEST_KEEP !== '1') await project?.destroy();
  });

  it('starts the app once the database is healthy, and the app becomes healthy', async () => {
    await project.mustCompose(['up', '-d', '--no-build']);
    const app = await project.waitHealthy('app');
    const db = await project.inspect('db');
    const firstHealthy = db.State.Health?.Log?.find((entry) => entry.ExitCode === 0);
    assert.ok(firstHealthy, 'the database passed its health check');
    assert.ok(new Date(app.State.StartedAt) >= new Date(firstHealthy.Start), `app started ${app.State.StartedAt}, database healthy ${firstHealthy.Start}`);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  });

  it('runs as uid 10001 on a read-only root file system, writing only to its volume and /tmp', async () => {
    const state = await project.inspect('app');
    assert.equal(state.HostConfig.ReadonlyRootfs, true);
    assert.equal((await project.mustCompose(['exec', '-T', 'app', 'id', '-u'])).trim(), '10001');
    assert.notEqual((await project.compose(['exec', '-T', 'app', 'touch', '/app/written'])).code, 0, '/app is not writable');
    assert.notEqual((await project.compose(['exec', '-T', 'app', 'touch', '/etc/written'])).code, 0, '/etc is not writable');
    assert.equal((await project.compose(['exec', '-T', 'app', 'touch', '/tmp/written', '/var/lib/vclerk/written'])).code, 0);
    await project.mustCompose(['exec', '-T', 'app', 'rm', '/tmp/written', '/var/lib/vclerk/written']);
  });

  it('logs the one-time setup link; the first administrator is created through it and signs in', async () => {
    const link = setupLinkIn((await project.mustCompose(['logs', '--no-color', 'app'])));
    assert.ok(link, 'the setup link is in `compose logs app`');
    assert.ok(link.startsWith(`${base}/setup/`), link);
    const browser = await launchBrowser();
    browsers.push(browser);
    admin = await setUpOrganisation(await browser.newPage(), link, 'Compose Bank');
    clerk = await adminInvites(admin, base, 'clerk', { recording: true });
  });

  it('configures single sign-on on its admin page: secrets sealed, the Test buttons run the directory clients inside the image', async () => {
    // The directory and the provider are 127.0.0.1:9 inside the app's own network namespace: nothing listens there.
    const outcome = await adminConfiguresUnreachableDirectories(admin.page, base);
    assert.match(outcome.ldapTest, /directory_unavailable/);
    assert.match(outcome.oidcTest, /directory_unavailable/);
    assert.match(outcome.signInChoice, /Company directory/);
    assert.match(outcome.signInChoice, /Company login/);
    const rows = await project.sql("SELECT kind, enabled, secret_sealed IS NOT NULL, settings::text FROM sso_providers ORDER BY kind");
    assert.deepEqual(rows.map((r) => r.slice(0, 3)), [['ldap', 't', 't'], ['oidc', 't', 't']]);
    assert.doesNotMatch(JSON.stringify(rows), /Service-Pw-1|Client-Secret-1/);
    // The periodic directory check is scheduled on the job queue.
    assert.deepEqual(await project.sql("SELECT cron FROM pgboss.schedule WHERE name = 'sso.directory_check'"), [['* * * * *']]);
  });

  it('holds a call between a clerk and a customer through the published ports, and records it into the data volume', async () => {
    const [clerkBrowser, customerBrowser] = await Promise.all([launchBrowser(), launchBrowser()]);
    browsers.push(clerkBrowser, customerBrowser);
    const clerkPage = await clerkBrowser.newPage();
    const link = await clerkStartsCall(clerkPage, base, clerk, clerk.password);
    await clerkPage.click('#join');
    const customerPage = await customerBrowser.newPage();
    await customerPage.goto(link);
    await customerPage.click('#join');
    await assertFlowing(customerPage);
    await assertFlowing(clerkPage);

    await clerkPage.click('#record-toggle');
    await customerPage.locator('#recording-consent').waitFor({ state: 'visible' });
    await customerPage.click('#consent-grant');
    await clerkPage.locator('#recording-indicator').waitFor({ state: 'visible' });
    await clerkPage.waitForTimeout(6000);
    await clerkPage.click('#record-toggle');
    await clerkPage.locator('#recording-indicator').waitFor({ state: 'hidden' });
    await endCall(clerkPage);

    let row: string[] | undefined;
    for (let i = 0; i < 240; i++) {
      row = (await project.sql("SELECT id, organisation_id, status, file_name, sha256 FROM recordings"))[0];
      if (row && ['ready', 'partial', 'failed'].includes(row[2]!)) break;
      await sleep(500);
    }
    assert.equal(row?.[2], 'ready', `recording finished as ${row?.[2]}`);
    const [id, organisationId, , fileName, sha256] = row as [string, string, string, string, string];
    const file = path.join(recordingDir(await project.volumePath('app-data'), organisationId, id), fileName);
    assert.ok(fs.existsSync(file), `${file} is in the app-data volume`);
    assert.equal(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'), sha256);
    const frames = Number(execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file], { encoding: 'utf8' }).trim());
    assert.ok(frames > 60, `the recording has ${frames} video frames`);
    recording = { id, organisationId, file, sha256 };
  });

  it('shows the admin Insights over a month and a year (the monthly sums), every chart with its table, nothing refused by the CSP', async () => {
    const page = admin.page;
    const problems: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) problems.push(`${m.type()}: ${m.text()}`); });
    const today = new Date().toISOString().slice(0, 10);
    const yearAgo = new Date(Date.now() - 365 * 86_400_000).toISOString().slice(0, 10);
    for (const query of ['period=month', `period=custom&from=${yearAgo}&to=${today}`]) {
      const response = await page.goto(`${base}/insights?${query}`);
      assert.equal(response?.status(), 200, query);
      const charts = await page.$$eval('section.insights-chart', (sections) => sections.map((s) => ({ chart: s.id.replace(/^chart-/, ''), svgs: s.querySelectorAll('svg').length, tables: s.querySelectorAll('table').length })));
      assert.deepEqual(charts.map((c) => c.chart), [...CHARTS], query);
      for (const c of charts) assert.ok(c.svgs >= 1 && c.tables === c.svgs, `${query}: ${JSON.stringify(c)}`);
    }
    const csv = await page.request.get(`${base}/insights/export/calls?period=month`);
    assert.equal(csv.status(), 200);
    assert.match(csv.headers()['content-type'] ?? '', /text\/csv/);
    assert.deepEqual(problems, []);
  });

  it('backs up while running (`compose exec app … backup create`), and `backup verify` accepts it', async () => {
    await project.mustCompose(['exec', '-T', 'app', 'node', 'dist/app/cli.js', 'backup', 'create', '/var/lib/vclerk/hot-backup.tar']);
    const verified = await project.compose(['exec', '-T', 'app', 'node', 'dist/app/cli.js', 'backup', 'verify', '/var/lib/vclerk/hot-backup.tar']);
    assert.equal(verified.code, 0, verified.stderr + verified.stdout);
  });

  it('stops cleanly within the grace period on `compose stop`', async () => {
    await project.mustCompose(['stop', 'app'], 120_000);
    const state = await project.inspect('app');
    assert.equal(state.State.Running, false);
    assert.equal(state.State.ExitCode, 0, `exit code ${state.State.ExitCode} (137 would mean killed after the grace period)`);
  });

  // With the app stopped: docker-compose 1.29 links a one-off container to
  // the service's running containers, which podman's API refuses (docs/docker.md).
  it('`compose run --rm app backup create` writes a backup that `backup verify` accepts', async () => {
    await project.mustCompose(['run', '--rm', '-T', 'app', 'backup', 'create', '/var/lib/vclerk/ci-backup.tar']);
    const file = path.join(await project.volumePath('app-data'), 'ci-backup.tar');
    assert.ok(fs.statSync(file).size > 0, 'the backup is in the volume');
    const verified = await project.compose(['run', '--rm', '-T', 'app', 'backup', 'verify', '/var/lib/vclerk/ci-backup.tar']);
    assert.equal(verified.code, 0, verified.stderr + verified.stdout);
    const missing = await project.compose(['run', '--rm', '-T', 'app', 'backup', 'verify', '/var/lib/vclerk/does-not-exist.tar']);
    assert.notEqual(missing.code, 0, 'verify fails for a missing file');
  });

  it('`compose down` then `up` keeps every row and the recording', async () => {
    await project.mustCompose(['start', 'app']);
    await project.waitHealthy('app');
    const before = await counts();
    await project.mustCompose(['down'], 180_000);
    await project.mustCompose(['up', '-d', '--no-build']);
    await project.waitHealthy('app');
    const after = await counts();
    assert.deepEqual(after.slice(0, 4), before.slice(0, 4));
    assert.ok(after[4]! >= before[4]!, 'no audit event lost');
    assert.equal(crypto.createHash('sha256').update(fs.readFileSync(recording.file)).digest('hex'), recording.sha256);
    const browser = await launchBrowser();
    browsers.push(browser);
    await signInThroughForm(await browser.newPage(), base, admin.email, admin.password);
  });
});

/** Ends the call from the clerk's page (a confirmation, when there is one, is accepted). */
async function endCall(page: Page): Promise<void> {
  page.once('dialog', (dialog) => void dialog.accept());
  const end = page.locator('#end-call');
  if (await end.count()) await end.click();
}
