import assert from 'node:assert/strict';
import { createApp } from '../app/app';
import type { OpsProbe } from '../app/ops/probe';
import { appVersion } from '../app/paths';
import { seedOrganisation, seedUser, signIn } from './support/accounts';
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

describe('GET /admin/status', () => {
  const db = useTestDatabase();

  async function adminPage(env: Record<string, string>, ops: OpsProbe | undefined, lang: 'en' | 'de' = 'en') {
    const app = createApp({ config: testConfig(env), db: db.current.knex, logger: silentLogger, sessionSecret: TEST_SECRET, ops });
    const org = await seedOrganisation(db.current.knex);
    const { agent } = await signIn(app, await seedUser(db.current.knex, org, 'admin'));
    const res = await agent.get('/admin/status').set('Accept-Language', lang).set('Accept', 'text/html');
    return { res, agent, org };
  }

  it('shows the appliance\'s figures and set-up to an admin', async () => {
    const { res } = await adminPage({ VCLERK_TLS: 'self-signed', VCLERK_TURN_URLS: 'turn:turn.example.org:3478', VCLERK_TURN_SECRET: '0123456789abcdef0123456789abcdef', VCLERK_RECORDING_KEY: 'a'.repeat(64) }, probe);
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
  });

  it('works without media in the process, and in German', async () => {
    const { res } = await adminPage({}, undefined, 'de');
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
