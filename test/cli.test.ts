import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import request from 'supertest';
import { csrfFrom, seedOrganisation } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { assertBuilt, cleanEnv, compiledCli, root, run } from './support/process';

/** The IT admin's shell commands, run as the compiled `vclerk` CLI against the test database. */
describe('vclerk user and node commands', () => {
  const db = useTestDatabase();
  before(() => assertBuilt());

  async function cli(...args: string[]) {
    const proc = run(compiledCli, args, cleanEnv({ DATABASE_URL: db.current.url, VCLERK_PUBLIC_URL: 'https://vclerk.example.org' }));
    const { code } = await proc.finished();
    return { code, output: proc.output() };
  }

  it('setup-link prints a first-run link while no organisation exists', async () => {
    const { code, output } = await cli('setup-link');
    assert.equal(code, 0, output);
    assert.match(output, /https:\/\/vclerk\.example\.org\/setup\/[A-Za-z0-9_-]{43}/);
  });

  it('create-admin creates an organisation and an admin who chooses a password through the link', async () => {
    const { code, output } = await cli('user', 'create-admin', '--email', 'it@bank.example', '--name', 'IT Admin', '--org-name', 'Shell Bank');
    assert.equal(code, 0, output);
    const link = /https:\/\/vclerk\.example\.org(\/invite\/[A-Za-z0-9_-]{43})/.exec(output)![1]!;
    const app = buildApp(db.current);
    const agent = request.agent(app);
    const form = await agent.get(link).expect(200);
    await agent.post(link).type('form').send({ _csrf: csrfFrom(form.text), password: 'the shell gave me this', password_confirm: 'the shell gave me this' }).expect(303);
    const user = await db.current.knex('users').where({ email: 'it@bank.example' }).first();
    assert.equal(user!.role, 'admin');
    assert.equal(user!.status, 'active');
    const events = await db.current.knex('audit_events').where({ target_id: user!.id }).orderBy('seq');
    assert.equal(events[0]!.actor_type, 'system');
    assert.equal(events[0]!.details.via, 'cli');
  });

  it('reset-password prints a reset link and lifts a lockout', async () => {
    await db.current.knex('login_throttles').insert({ key: `account:${require('node:crypto').createHash('sha256').update('it@bank.example').digest('hex')}`, failures: 9, window_started_at: new Date(), locked_until: new Date(Date.now() + 3600_000) });
    const { code, output } = await cli('user', 'reset-password', '--email', 'IT@bank.example');
    assert.equal(code, 0, output);
    assert.match(output, /\/password-reset\/[A-Za-z0-9_-]{43}/);
    assert.equal((await db.current.knex('login_throttles')).length, 0);
  });

  it('reports mistakes clearly with a non-zero exit code', async () => {
    const dup = await cli('user', 'create-admin', '--email', 'it@bank.example', '--name', 'Again', '--org', 'shell-bank');
    assert.equal(dup.code, 1);
    assert.match(dup.output, /already exists/);
    const noOrg = await cli('user', 'create-admin', '--email', 'x@bank.example', '--name', 'X', '--org', 'nope');
    assert.match(noOrg.output, /no organisation with the ID "nope"/);
    const unknown = await cli('user', 'reset-password', '--email', 'ghost@bank.example');
    assert.equal(unknown.code, 1);
    const usage = await cli('user', 'frobnicate');
    assert.equal(usage.code, 2);
    await seedOrganisation(db.current.knex, 'Another');
    const setup = await cli('setup-link');
    assert.match(setup.output, /already set up/);
  });

  it('node list, drain and undrain work from the shell (names a node that does not exist, usage on a missing name)', async () => {
    const empty = await cli('node', 'list');
    assert.equal(empty.code, 0, empty.output);
    assert.match(empty.output, /no node has registered yet/);
    const unknown = await cli('node', 'drain', 'nope');
    assert.equal(unknown.code, 1);
    assert.match(unknown.output, /vclerk node: no node is registered under the name "nope"/);
    const usage = await cli('node', 'undrain');
    assert.equal(usage.code, 2);
    assert.match(usage.output, /node drain <name>/);
  });
});

/** The README's commands as written: `npx vclerk ...` after a build (npm test builds first). */
describe('npx vclerk after a rebuild', () => {
  before(() => assertBuilt());

  it('runs the compiled CLI through the package bin, which the build leaves executable', async () => {
    assert.ok((fs.statSync(compiledCli).mode & 0o111) !== 0, 'dist/app/cli.js is not executable');
    const child = spawn('npx', ['--no-install', 'vclerk', 'config', 'check'], { cwd: root, env: cleanEnv({ DATABASE_URL: 'postgres://u:p@127.0.0.1:9/x' }) });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.doesNotMatch(output, /Permission denied/);
    assert.equal(code, 0, output);
  });

  it('`config check` reports what the server would refuse at start: half a TURN setting exits 78', async () => {
    const child = spawn('npx', ['--no-install', 'vclerk', 'config', 'check'], { cwd: root, env: cleanEnv({ DATABASE_URL: 'postgres://u:p@127.0.0.1:9/x', VCLERK_TURN_URLS: 'turn:turn.example.org:3478' }) });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 78, output);
    assert.match(output, /TURN needs both VCLERK_TURN_URLS and VCLERK_TURN_SECRET/);
    assert.doesNotMatch(output, /configuration is valid/);
  });
});
