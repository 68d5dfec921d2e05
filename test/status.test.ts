import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import request from 'supertest';
import { createApp } from '../app/app';
import { actorOf } from '../app/access/caller';
import { CallService } from '../app/calls/service';
import type { OpsProbe } from '../app/ops/probe';
import { appVersion } from '../app/core/paths';
import { seedOrganisation, seedUser, signIn, type SeededOrganisation } from './support/accounts';
import { silentLogger, testConfig, TEST_SECRET } from './support/context';
import { useTestDatabase } from './support/database';

const probe: OpsProbe = {
  pool: { describe: () => [{ index: 0, pid: 4242, port: 40000, routers: 1, alive: true }] },
  rooms: { size: 1 },
  jobs: { backlog: async () => 5 },
  tls: { mode: 'self-signed', fingerprint: 'AB:CD:EF', notAfter: new Date(Date.UTC(2031, 0, 1)) },
  database: { embedded: true },
  ffmpegPath: '/usr/bin/ffmpeg',
};

async function adminPage(knex: Knex, env: Record<string, string>, ops: OpsProbe | undefined, lang: 'en' | 'de' = 'en', org?: SeededOrganisation) {
  const app = createApp({ config: testConfig(env), db: knex, logger: silentLogger, sessionSecret: TEST_SECRET, ops });
  const organisation = org ?? (await seedOrganisation(knex));
  const { agent } = await signIn(app, await seedUser(knex, organisation, 'admin'));
  const res = await agent.get('/admin/status').set('Accept-Language', lang).set('Accept', 'text/html');
  return { res, agent, org: organisation, app };
}

/** The value shown for a term of the page's lists. */
function shown(html: string, term: string): string | undefined {
  return new RegExp(`<dt>${term}</dt>\\s*<dd[^>]*>([^<]*)</dd>`).exec(html)?.[1]?.trim();
}

/** Calls, queue places and recordings of one organisation, made as the app makes them. */
async function activity(knex: Knex, org: SeededOrganisation, counts: { waiting: number; active: number; queue: number; recording: number }) {
  const clerk = await seedUser(knex, org, 'clerk');
  const scope = { organisationId: org.id, clerkId: clerk.id, actor: actorOf({ ...clerk, organisationSlug: org.slug, organisationName: org.name, organisationBrandVersion: 0, language: null }), ip: null, userAgent: null };
  const calls = new CallService(knex);
  for (let i = 0; i < counts.waiting + counts.active; i++) {
    const { call } = await calls.startForClerk(scope, 24);
    if (i >= counts.waiting) await knex('calls').where({ id: call.id }).update({ status: 'active', started_at: knex.fn.now() });
    if (i < counts.recording) await knex('recordings').insert({ organisation_id: org.id, call_id: call.id, status: 'recording' });
  }
  for (let i = 0; i < counts.queue; i++) await knex('queue_entries').insert({ organisation_id: org.id, ticket_hash: crypto.randomBytes(32).toString('hex') });
}

describe('GET /admin/status', () => {
  describe('on an appliance of one organisation', () => {
    const db = useTestDatabase();

    it('shows the appliance\'s figures and set-up to its admin', async () => {
      const { res } = await adminPage(db.current.knex, { VCLERK_TLS: 'self-signed', VCLERK_TURN_URLS: 'turn:turn.example.org:3478', VCLERK_TURN_SECRET: '0123456789abcdef0123456789abcdef', VCLERK_RECORDING_KEY: 'a'.repeat(64) }, probe);
      assert.equal(res.status, 200);
      assert.equal(res.headers['cache-control'], 'no-store');
      const html = res.text;
      assert.match(html, /Appliance status/);
      assert.ok(html.includes(`<code>${appVersion}</code>`), 'the version');
      assert.match(html, /Embedded PostgreSQL/);
      assert.match(html, /current \(all migrations applied\)/);
      assert.match(html, /on, with a self-signed certificate/);
      assert.match(html, /AB:CD:EF/);
      assert.match(html, /configured: 1 server, credentials valid for 60 minutes/);
      assert.match(html, /turn:turn\.example\.org:3478/);
      assert.doesNotMatch(html, /0123456789abcdef0123456789abcdef/, 'never the TURN secret');
      assert.match(html, /on \(AES-256-GCM\)/);
      assert.match(html, /\/usr\/bin\/ffmpeg/);
      assert.match(html, /<td>4242<\/td>/);
      assert.match(html, /recording\.finalise/);
      assert.match(html, /href="\/admin\/status" aria-current="page"/, 'the navigation link');
      assert.doesNotMatch(html, /<style|\sstyle=|<script(?![^>]*\ssrc=)/i);
      assert.match(html, /Calls with live media/);
      assert.match(html, /Calls \(routers\)/);
      assert.match(shown(html, 'Free disk space \\(data directory\\)') ?? '', /GiB/);
      assert.doesNotMatch(html, /id="ops-scope"/);
    });
  });

  describe('on an appliance of several organisations', () => {
    const db = useTestDatabase();

    it('shows an organisation\'s admin only their organisation\'s calls, queue and recordings, and the machine\'s health', async () => {
      const knex = db.current.knex;
      const [a, b] = [await seedOrganisation(knex), await seedOrganisation(knex)];
      await activity(knex, a, { waiting: 1, active: 0, queue: 0, recording: 0 });
      await activity(knex, b, { waiting: 2, active: 3, queue: 4, recording: 2 });

      const { res, app } = await adminPage(knex, {}, probe, 'en', a);
      assert.equal(res.status, 200);
      const html = res.text;
      assert.match(html, /id="ops-scope"/, 'says whose figures these are');
      assert.match(html, /Calls and queue of your organisation/);
      assert.equal(shown(html, 'Active calls'), '0', 'none of B\'s active calls');
      assert.equal(shown(html, 'Calls waiting for a participant'), '1', 'A\'s own waiting call, none of B\'s');
      assert.equal(shown(html, 'Customers waiting in queues'), '0');
      assert.equal(shown(html, 'Being recorded'), '0');
      // The appliance's load tells other organisations' business: not here.
      assert.doesNotMatch(html, /Calls with live media/);
      assert.doesNotMatch(html, /Calls \(routers\)/);
      assert.doesNotMatch(html, /recording\.finalise/);
      // The machine's health stays: workers, version, free disk.
      assert.match(html, /<td>4242<\/td>/);
      assert.match(html, /<td>running<\/td>/);
      assert.ok(html.includes(`<code>${appVersion}</code>`));
      assert.match(shown(html, 'Free disk space \\(data directory\\)') ?? '', /GiB/);

      // B's admin sees B's.
      const other = await adminPage(knex, {}, probe, 'en', b);
      assert.equal(shown(other.res.text, 'Active calls'), '3');
      assert.equal(shown(other.res.text, 'Calls waiting for a participant'), '2');
      assert.equal(shown(other.res.text, 'Customers waiting in queues'), '4');
      assert.equal(shown(other.res.text, 'Being recorded'), '2');

      // The appliance's operator reads the whole appliance at /metrics (loopback is allowed by default).
      const metrics = await request(app).get('/metrics').expect(200);
      assert.match(metrics.text, /^vclerk_calls\{status="waiting"\} 3$/m);
      assert.match(metrics.text, /^vclerk_calls\{status="active"\} 3$/m);
      assert.match(metrics.text, /^vclerk_queue_waiting 4$/m);
    });

    it('works without media in the process, and in German', async () => {
      const { res } = await adminPage(db.current.knex, {}, undefined, 'de');
      assert.equal(res.status, 200);
      assert.match(res.text, /Status der Appliance/);
      assert.match(res.text, /Die Medien-Worker laufen nicht in diesem Prozess/);
      assert.match(res.text, /aus: einfaches HTTP/);
      assert.match(res.text, /nicht eingerichtet/);
    });

    it('is for admins only', async () => {
      const app = createApp({ config: testConfig(), db: db.current.knex, logger: silentLogger, sessionSecret: TEST_SECRET });
      const org = await seedOrganisation(db.current.knex);
      const { agent } = await signIn(app, await seedUser(db.current.knex, org, 'clerk'));
      await agent.get('/admin/status').set('Accept', 'application/json').expect(403);
    });
  });
});
