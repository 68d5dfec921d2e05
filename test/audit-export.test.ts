import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { GENESIS_HASH } from '../app/audit/chain';
import { pruneExpiredExports } from '../app/compliance/audit-export';
import { exportColumns } from '../app/compliance/audit-export-format';
import { manifestText, signManifest, type ExportManifest } from '../app/compliance/audit-export-manifest';
import { describeVerification, verifyExport, type VerifyOptions } from '../app/compliance/audit-offline-verify';
import { AuditService } from '../app/audit/service';
import { publicKeyInfo, type ApplianceKey } from '../app/audit/signing';
import { csrfFrom, seedOrganisation, seedUser, signIn, type Browser, type SeededOrganisation } from './support/accounts';
import { seedAuditChain } from './support/audit-seed';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';
import { cleanEnv, compiledCli, run } from './support/process';

const SEEDED = 100_000;
const FOREIGN_MARKER = 'foreign-marker@insurer.example';

/** A response body as bytes, whatever its type. */
async function download(agent: TestAgent, url: string, status = 200): Promise<{ body: Buffer; headers: Record<string, string> }> {
  const res = await agent
    .get(url)
    .buffer(true)
    .parse((r, done) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => done(null, Buffer.concat(chunks)));
    })
    .expect(status);
  return { body: res.body as Buffer, headers: res.headers as Record<string, string> };
}

/** Creates an export through the form; returns its id. */
async function createExport(browser: Browser, fields: Record<string, string>): Promise<string> {
  const res = await browser.agent.post('/compliance/audit/export').type('form').send({ _csrf: browser.csrf, ...fields }).expect(303);
  const id = /created=([0-9a-f-]{36})/.exec(res.headers.location ?? '')?.[1];
  assert.ok(id, `redirected to ${res.headers.location}`);
  return id;
}

describe('audit export and offline verification', function () {
  this.timeout(300_000);
  const db = useTestDatabase();
  const knex = () => db.current.knex;
  let dataDir: string;
  let work: string;
  let app: Express;
  let org: SeededOrganisation;
  let compliance: Browser;
  let admin: Browser;
  let clerk: Browser;
  let foreign: Browser;
  /** The full NDJSON export of the organisation, its manifest, and the public key from the page. */
  let full: { id: string; file: string; manifestFile: string; manifest: ExportManifest; text: string; keyFile: string };

  const write = (name: string, data: string | Buffer) => {
    const file = path.join(work, name);
    fs.writeFileSync(file, data);
    return file;
  };
  const verify = (file: string, manifestFile: string, options: VerifyOptions = {}) => verifyExport(file, manifestFile, options);

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-export-data-'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-export-work-'));
    app = buildApp(db.current, { env: { VCLERK_DATA_DIR: dataDir } });
    org = await seedOrganisation(knex(), 'Export Bank');
    const other = await seedOrganisation(knex(), 'Export Insurer');
    compliance = await signIn(app, await seedUser(knex(), org, 'compliance'));
    admin = await signIn(app, await seedUser(knex(), org, 'admin'));
    clerk = await signIn(app, await seedUser(knex(), org, 'clerk'));
    foreign = await signIn(app, await seedUser(knex(), other, 'compliance'));

    const started = Date.now();
    await seedAuditChain(knex(), org.id, SEEDED);
    assert.ok(Date.now() - started < 60_000, `seeding ${SEEDED} events took ${Date.now() - started} ms`);
    await seedAuditChain(knex(), other.id, 20, { label: () => FOREIGN_MARKER });
    await new AuditService(knex()).record({
      organisationId: org.id, actor: { type: 'guest', label: '=cmd()|x' }, action: 'auth.login_failed', details: { reason: 'formula' },
    });

    const id = await createExport(compliance, { format: 'ndjson' });
    const page = await compliance.agent.get(`/compliance/audit/export?created=${id}`).expect(200);
    assert.match(page.text, new RegExp(`href="/compliance/audit/exports/${id}/file"`));
    assert.match(page.text, new RegExp(`href="/compliance/audit/exports/${id}/manifest.json"`));
    const keyUrl = /href="(\/compliance\/audit\/keys\/[0-9a-f]{16}\.pem)"/.exec(page.text)![1]!;
    const fileRes = await download(compliance.agent, `/compliance/audit/exports/${id}/file`);
    assert.match(fileRes.headers['content-disposition']!, /attachment; filename="?audit-export-\d{4}-\d{2}-\d{2}-[0-9a-f]{8}\.ndjson"?$/);
    const manifestRes = await download(compliance.agent, `/compliance/audit/exports/${id}/manifest.json`);
    const keyRes = await download(compliance.agent, keyUrl);
    const text = fileRes.body.toString('utf8');
    full = {
      id,
      text,
      file: write('full.ndjson', fileRes.body),
      manifestFile: write('full.manifest.json', manifestRes.body),
      manifest: JSON.parse(manifestRes.body.toString('utf8')),
      keyFile: write('appliance.pem', keyRes.body),
    };
  });

  after(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  describe('the NDJSON export', () => {
    it('holds the whole chain, every chained field as stored, and nothing of another organisation', async () => {
      // Everything before the export's own audit event.
      const exported = await knex()('audit_events').where({ chain: org.id, action: 'audit.exported', target_id: full.id }).first('seq');
      const chain = await knex()('audit_events').where({ chain: org.id, seq: String(Number(exported!.seq) - 1) }).first('seq', 'hash');
      const lines = full.text.trimEnd().split('\n');
      assert.ok(lines.length > SEEDED);
      assert.equal(lines.length, Number(chain!.seq));
      const first = JSON.parse(lines[0]!);
      assert.deepEqual(Object.keys(first), [...exportColumns]);
      assert.equal(first.seq, 1);
      assert.equal(first.prev_hash, GENESIS_HASH);
      const stored = await knex()('audit_events').where({ chain: org.id, seq: '5' }).first();
      const row5 = JSON.parse(lines[4]!);
      assert.equal(row5.occurred_at, (stored!.occurred_at as Date).toISOString());
      assert.deepEqual(row5.details, stored!.details);
      assert.equal(row5.hash, stored!.hash);
      assert.equal(JSON.parse(lines.at(-1)!).hash, chain!.hash);
      assert.ok(!full.text.includes(FOREIGN_MARKER));
    });

    it('comes with a signed manifest: period, filters, count, first and last link, file hash, public key', () => {
      const m = full.manifest;
      assert.equal(m.format, 'vclerk.audit-export');
      assert.equal(m.version, 1);
      assert.equal(m.export_id, full.id);
      assert.equal(m.organisation_id, org.id);
      assert.deepEqual(m.period, { from: null, to: null, from_time: null, to_time: null });
      assert.deepEqual(m.filters, { actor: null, action: null });
      assert.equal(m.complete_chain, true);
      assert.equal(m.row_count, full.text.trimEnd().split('\n').length);
      assert.deepEqual(m.first, { seq: 1, prev_hash: GENESIS_HASH, hash: JSON.parse(full.text.slice(0, full.text.indexOf('\n'))).hash });
      assert.equal(m.last!.seq, m.row_count);
      assert.deepEqual(m.chain_head, m.last);
      assert.equal(m.file.sha256, crypto.createHash('sha256').update(fs.readFileSync(full.file)).digest('hex'));
      assert.equal(m.file.bytes, fs.statSync(full.file).size);
      assert.equal(m.public_key.fingerprint, publicKeyInfo(crypto.createPublicKey(fs.readFileSync(full.keyFile, 'utf8'))).fingerprint);
      assert.equal(m.signature!.algorithm, 'ed25519');
      const keyFile = path.join(dataDir, 'appliance-signing-key.pem');
      assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    });

    it('is audited after its last row (so the event is not inside the export)', async () => {
      const event = await knex()('audit_events').where({ chain: org.id, action: 'audit.exported', target_id: full.id }).first();
      assert.ok(event);
      assert.equal(Number(event.seq), full.manifest.last!.seq + 1);
      assert.equal(event.details.format, 'ndjson');
      assert.equal(event.details.row_count, full.manifest.row_count);
      assert.equal(event.details.sha256, full.manifest.file.sha256);
      assert.deepEqual(event.details.filters, { actor: null, action: null });
      const downloads = await knex()('audit_events').where({ chain: org.id, action: 'audit.export_downloaded', target_id: full.id });
      assert.equal(downloads.length, 1);
    });

    it('verifies: signature, the --public-key, file hash, count, and every link', async () => {
      const result = await verify(full.file, full.manifestFile, { publicKeyPem: fs.readFileSync(full.keyFile, 'utf8') });
      assert.deepEqual(result.problems, []);
      assert.equal(result.ok, true);
      assert.equal(result.signature, 'valid');
      assert.equal(result.publicKey, 'matches');
      assert.equal(result.fileHash, 'matches');
      assert.equal(result.rows, full.manifest.row_count);
      assert.equal(result.broken, undefined);
    });

    it('`vclerk audit verify` runs without database or configuration and exits 0, 1 or 2', async () => {
      // A configuration that would not load, and no database: the command needs neither.
      const env = cleanEnv({ VCLERK_PORT: 'not-a-port', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
      // The built CLI, as the image runs it (npm test builds first).
      const cli = async (...args: string[]) => {
        const proc = run(compiledCli, ['audit', 'verify', ...args], env);
        const { code } = await proc.finished();
        return { code, output: proc.output() };
      };
      const ok = await cli(full.file, full.manifestFile, '--public-key', full.keyFile);
      assert.equal(ok.code, 0, ok.output);
      assert.match(ok.output, new RegExp(`OK: ${full.manifest.row_count} rows verified`));
      assert.match(ok.output, /public key\s+matches/);

      const edited = write('cli-edited.ndjson', full.text.replace('"seq":7,', '"seq":70,'));
      const broken = await cli(edited, full.manifestFile);
      assert.equal(broken.code, 1, broken.output);
      assert.match(broken.output, /BROKEN at line 7 \(seq 70\)/);
      assert.match(broken.output, /FAILED/);

      // Rows on two threads (the compiled worker beside the CLI): the same report.
      const built = run(compiledCli, ['audit', 'verify', edited, full.manifestFile, '--threads', '2'], env);
      assert.equal((await built.finished()).code, 1, built.output());
      assert.equal(built.output(), broken.output);
      const threaded = await cli(full.file, full.manifestFile, '--threads', '3');
      assert.equal(threaded.code, 0, threaded.output);

      assert.equal((await cli(full.file)).code, 2);
      assert.equal((await cli(full.file, full.manifestFile, '--threads', 'many')).code, 2);
      assert.equal((await cli(path.join(work, 'missing.ndjson'), full.manifestFile)).code, 2);
    });
  });

  describe('tampering is found', () => {
    it('one changed byte: the file hash differs, and the chain names the row', async () => {
      const at = full.text.indexOf('seed-3@bank.example');
      const bytes = Buffer.from(full.text);
      bytes[at] = 'S'.charCodeAt(0);
      const file = write('byte.ndjson', bytes);
      const line = full.text.slice(0, at).split('\n').length;
      const result = await verify(file, full.manifestFile);
      assert.equal(result.ok, false);
      assert.equal(result.fileHash, 'mismatch');
      assert.ok(result.problems.includes('file_hash_mismatch'));
      assert.deepEqual(result.broken, { line, seq: line, reason: 'hash_mismatch' });

      // A forged manifest naming the new file's hash: the signature no longer holds.
      const forged = { ...full.manifest, file: { ...full.manifest.file, sha256: crypto.createHash('sha256').update(bytes).digest('hex') } };
      const forgedFile = write('byte.manifest.json', manifestText(forged));
      const second = await verify(file, forgedFile);
      assert.equal(second.fileHash, 'matches');
      assert.equal(second.signature, 'invalid');
      assert.ok(second.problems.includes('signature_invalid'));
      assert.equal(second.ok, false);
    });

    describe('one deleted row', () => {
      let file: string;
      let lines: string[];
      const deleted = 500;

      before(() => {
        lines = full.text.trimEnd().split('\n');
        lines.splice(deleted - 1, 1);
        file = write('deleted.ndjson', `${lines.join('\n')}\n`);
      });

      function fixedUp(): Omit<ExportManifest, 'public_key' | 'signature'> {
        const { public_key: _k, signature: _s, ...rest } = full.manifest;
        return { ...rest, row_count: lines.length, file: { ...rest.file, sha256: crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'), bytes: fs.statSync(file).size } };
      }

      it('with the manifest\'s hash and count fixed up but not re-signed: the signature fails', async () => {
        const manifest = { ...full.manifest, ...fixedUp() };
        const result = await verify(file, write('deleted.fixed.json', manifestText(manifest)));
        assert.equal(result.signature, 'invalid');
        assert.equal(result.fileHash, 'matches');
        assert.equal(result.ok, false);
      });

      it('re-signed with a different key: the signature holds, but not against the appliance\'s key', async () => {
        const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
        const other: ApplianceKey = { privateKey, publicKey, info: publicKeyInfo(publicKey) };
        const manifestFile = write('deleted.resigned.json', manifestText(signManifest(fixedUp(), other)));
        const withoutKey = await verify(file, manifestFile);
        assert.equal(withoutKey.signature, 'valid');
        assert.equal(withoutKey.publicKey, 'not_given');
        const withKey = await verify(file, manifestFile, { publicKeyPem: fs.readFileSync(full.keyFile, 'utf8') });
        assert.equal(withKey.publicKey, 'mismatch');
        assert.ok(withKey.problems.includes('public_key_mismatch'));
        assert.equal(withKey.ok, false);
      });

      it('the chain alone (file hash skipped) names the gap at the right line', async () => {
        const result = await verify(file, full.manifestFile, { checkFileHash: false });
        assert.equal(result.fileHash, 'skipped');
        assert.deepEqual(result.broken, { line: deleted, seq: deleted + 1, reason: 'sequence_gap' });
        assert.ok(result.problems.includes('row_count_mismatch'));
      });

      it('a changed prev_hash after the gap is named as such', async () => {
        // Remove the gap by renumbering: the seq fits again, but the link does not.
        const renumbered = lines.map((l, i) => (i >= deleted - 1 ? l.replace(/"seq":\d+,/, `"seq":${i + 1},`) : l));
        const result = await verify(write('renumbered.ndjson', `${renumbered.join('\n')}\n`), full.manifestFile, { checkFileHash: false });
        assert.deepEqual(result.broken, { line: deleted, seq: deleted, reason: 'prev_hash_mismatch' });
      });
    });

    it('names only what is broken: the rows read after a break are still checked, and an intact last row is not reported', async () => {
      const lines = full.text.trimEnd().split('\n');
      lines[9] = lines[9]!.replace('"action":"', '"action":"x');
      const changed = write('one-changed.ndjson', `${lines.join('\n')}\n`);
      const one = await verify(changed, full.manifestFile, { checkFileHash: false });
      assert.deepEqual(one.breaks, [{ line: 10, seq: 10, reason: 'hash_mismatch' }]);
      assert.equal(one.breakCount, 1);
      assert.equal(one.rows, full.manifest.row_count);
      assert.deepEqual(one.problems, ['chain_broken']);
      const report = describeVerification(one);
      assert.doesNotMatch(report, /last row differs/);
      assert.match(report, /BROKEN at line 10 \(seq 10\)/);

      // Two changed rows far apart: both named; a deleted row: the gap named, the last row still matches.
      lines[1999] = lines[1999]!.replace('"action":"', '"action":"y');
      const two = await verify(write('two-changed.ndjson', `${lines.join('\n')}\n`), full.manifestFile, { checkFileHash: false });
      assert.deepEqual(two.breaks.map((b) => [b.line, b.reason]), [[10, 'hash_mismatch'], [2000, 'hash_mismatch']]);
      assert.deepEqual(two.problems, ['chain_broken']);
      const fewer = full.text.trimEnd().split('\n');
      fewer.splice(99, 1);
      const gap = await verify(write('gap.ndjson', `${fewer.join('\n')}\n`), full.manifestFile, { checkFileHash: false });
      assert.deepEqual(gap.breaks, [{ line: 100, seq: 101, reason: 'sequence_gap' }]);
      assert.deepEqual(gap.problems.sort(), ['chain_broken', 'row_count_mismatch']);

      // The last row itself changed: then (and only then) it is reported as differing from the manifest.
      const tail = full.text.trimEnd().split('\n');
      tail[tail.length - 1] = tail[tail.length - 1]!.replace(/"hash":"[0-9a-f]{64}"/, `"hash":"${'f'.repeat(64)}"`);
      const last = await verify(write('last-changed.ndjson', `${tail.join('\n')}\n`), full.manifestFile, { checkFileHash: false });
      assert.ok(last.problems.includes('last_row_mismatch'));
    });

    it('two rows swapped: the break is named at the first of them', async () => {
      const lines = full.text.trimEnd().split('\n');
      [lines[999], lines[1000]] = [lines[1000]!, lines[999]!];
      const result = await verify(write('swapped.ndjson', `${lines.join('\n')}\n`), full.manifestFile, { checkFileHash: false });
      assert.deepEqual(result.broken, { line: 1000, seq: 1001, reason: 'sequence_gap' });
      assert.equal(result.ok, false);
    });
  });

  describe('filtered exports', () => {
    it('an action filter: not a complete chain; each row\'s hash is checked, and order too', async () => {
      const id = await createExport(admin, { format: 'ndjson', action: 'auth', from: '2021-01-01', to: '2021-01-01' });
      const file = write('filtered.ndjson', (await download(admin.agent, `/compliance/audit/exports/${id}/file`)).body);
      const manifestBody = (await download(admin.agent, `/compliance/audit/exports/${id}/manifest.json`)).body;
      const manifestFile = write('filtered.manifest.json', manifestBody);
      const manifest = JSON.parse(manifestBody.toString()) as ExportManifest;
      assert.equal(manifest.complete_chain, false);
      assert.deepEqual(manifest.filters, { actor: null, action: 'auth' });
      assert.deepEqual(manifest.period, { from: '2021-01-01', to: '2021-01-01', from_time: '2021-01-01T00:00:00.000Z', to_time: '2021-01-02T00:00:00.000Z' });
      // One in ten seeded events is auth.login_failed, one per second from midnight.
      assert.equal(manifest.row_count, 8640);
      const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
      assert.ok(lines.every((r) => r.action === 'auth.login_failed' && r.occurred_at.startsWith('2021-01-01')));
      assert.equal((await verify(file, manifestFile)).ok, true);

      const text = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
      [text[9], text[10]] = [text[10]!, text[9]!];
      const swapped = await verify(write('filtered-swapped.ndjson', `${text.join('\n')}\n`), manifestFile, { checkFileHash: false });
      assert.deepEqual(swapped.broken, { line: 11, seq: lines[9].seq, reason: 'order' });
    });

    it('a period only: a complete stretch starting after genesis still verifies its links', async () => {
      const id = await createExport(compliance, { format: 'ndjson', from: '2021-01-02', to: '2021-01-02' });
      const file = write('period.ndjson', (await download(compliance.agent, `/compliance/audit/exports/${id}/file`)).body);
      const manifestFile = write('period.manifest.json', (await download(compliance.agent, `/compliance/audit/exports/${id}/manifest.json`)).body);
      const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as ExportManifest;
      assert.equal(manifest.complete_chain, true);
      // Seeded one per second from 2021-01-01T00:00:00Z: the second day holds events 86,400 to 99,999.
      assert.equal(manifest.row_count, SEEDED - 86_400);
      assert.ok(manifest.first!.seq > 1);
      const result = await verify(file, manifestFile);
      assert.deepEqual(result.problems, []);
    });
  });

  describe('the CSV export', () => {
    it('has the columns, the row count, neutralised formulas, and a signed manifest', async () => {
      const id = await createExport(compliance, { format: 'csv', actor: '=cmd' });
      const { body, headers } = await download(compliance.agent, `/compliance/audit/exports/${id}/file`);
      assert.match(headers['content-type']!, /^text\/csv/);
      const text = body.toString('utf8');
      const lines = text.split('\r\n');
      assert.equal(lines[0], `\ufeff${exportColumns.join(',')}`);
      assert.equal(lines.at(-1), '');
      assert.equal(lines.length - 2, 1);
      assert.match(lines[1]!, /,'=cmd\(\)\|x,/);
      assert.doesNotMatch(text, /,=cmd/);
      const manifestFile = write('csv.manifest.json', (await download(compliance.agent, `/compliance/audit/exports/${id}/manifest.json`)).body);
      const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as ExportManifest;
      assert.equal(manifest.row_count, 1);
      assert.equal(manifest.file.format, 'csv');
      const result = await verify(write('export.csv', body), manifestFile);
      assert.equal(result.ok, true);
      assert.equal(result.rowsChecked, false);
    });
  });

  describe('access', () => {
    it('a clerk is refused everywhere (403)', async () => {
      await clerk.agent.get('/compliance/audit/export').expect(403);
      await clerk.agent.post('/compliance/audit/export').type('form').send({ _csrf: clerk.csrf, format: 'ndjson' }).expect(403);
      await clerk.agent.get(`/compliance/audit/exports/${full.id}/file`).expect(403);
      await clerk.agent.get(`/compliance/audit/exports/${full.id}/manifest.json`).expect(403);
      await clerk.agent.get(`/compliance/audit/keys/${full.manifest.public_key.key_id}.pem`).expect(403);
    });

    it('anonymous visitors are sent to sign in', async () => {
      await request(app).get('/compliance/audit/export').set('Accept', 'text/html').expect(303);
    });

    it('another organisation sees none of the events and cannot fetch the export (404, audited)', async () => {
      const id = await createExport(foreign, { format: 'ndjson' });
      const text = (await download(foreign.agent, `/compliance/audit/exports/${id}/file`)).body.toString();
      assert.ok(text.includes(FOREIGN_MARKER));
      assert.ok(!text.includes(org.id));
      const page = await foreign.agent.get('/compliance/audit/export').expect(200);
      assert.ok(!page.text.includes(full.id));
      await foreign.agent.get(`/compliance/audit/exports/${full.id}/file`).expect(404);
      await foreign.agent.get(`/compliance/audit/exports/${full.id}/manifest.json`).expect(404);
      const denied = await knex()('audit_events').where({ action: 'security.cross_organisation_denied', target_id: full.id });
      // Each attempt is in the prober's trail and, without their name, in this organisation's (auth/scoped-service.ts).
      assert.equal(denied.filter((e) => e.organisation_id !== org.id).length, 2);
      assert.equal(denied.filter((e) => e.organisation_id === org.id && e.actor_label === null).length, 2);
    });

    it('checks the form: dates, action, format', async () => {
      const bad = await compliance.agent.post('/compliance/audit/export').type('form').send({ _csrf: compliance.csrf, format: 'ndjson', from: '2021-13-01' }).expect(400);
      assert.match(bad.text, /Please enter a valid date/);
      await compliance.agent.post('/compliance/audit/export').type('form').send({ _csrf: compliance.csrf, format: 'xml' }).expect(400);
      await compliance.agent.post('/compliance/audit/export').type('form').send({ _csrf: compliance.csrf, format: 'ndjson', action: 'nope' }).expect(400);
    });
  });

  describe('the page and the kept files', () => {
    it('shows the public key with its fingerprint, without inline script or style', async () => {
      const res = await compliance.agent.get('/compliance/audit/export').set('Accept-Language', 'de').expect(200);
      assert.ok(res.text.includes(full.manifest.public_key.fingerprint));
      assert.match(res.text, /BEGIN PUBLIC KEY/);
      assert.match(res.text, /Audit-Trail exportieren/);
      assert.doesNotMatch(res.text, /<script(?![^>]*\ssrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i);
      csrfFrom(res.text);
    });

    it('deletes files after 24 hours; the manifest stays', async () => {
      const file = path.join(dataDir, 'exports', org.id, `${full.id}.ndjson`);
      assert.ok(fs.existsSync(file));
      const removed = await pruneExpiredExports(knex(), dataDir, new Date(Date.now() + 25 * 3600_000));
      assert.ok(removed >= 1);
      assert.ok(!fs.existsSync(file));
      await compliance.agent.get(`/compliance/audit/exports/${full.id}/file`).expect(404);
      await download(compliance.agent, `/compliance/audit/exports/${full.id}/manifest.json`);
    });
  });
});
