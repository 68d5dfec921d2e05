import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import request from 'supertest';
import { createApp } from '../app/app';
import type { OpsProbe } from '../app/ops/probe';
import { seedOrganisation, seedUser } from './support/accounts';
import { testConfig, TEST_SECRET } from './support/context';
import { useTestDatabase } from './support/database';

const TOKEN = 'metrics-token-0123456789abcdefghijklmnop';

/** A probe standing in for the media pool and the job queues. */
const probe: OpsProbe = {
  pool: { describe: () => [{ index: 0, pid: 101, port: 40000, routers: 3, alive: true }, { index: 1, pid: 102, port: 40001, routers: 0, alive: false }] },
  rooms: { size: 3 },
  jobs: { backlog: async (queue) => (queue === 'recording.finalise' ? 2 : 0) },
};

describe('GET /metrics', () => {
  const db = useTestDatabase();
  const logged: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write(chunk, _enc, done) { logged.push(JSON.parse(String(chunk))); done(); } }));

  function app(env: Record<string, string> = {}) {
    return createApp({ config: testConfig(env), db: db.current.knex, logger, sessionSecret: TEST_SECRET, ops: probe });
  }
  const auditCount = async () => Number((await db.current.knex('audit_events').count({ n: '*' }))[0]!.n);

  before(async () => {
    const org = await seedOrganisation(db.current.knex);
    const clerk = await seedUser(db.current.knex, org, 'clerk');
    await db.current.knex('calls').insert([
      { organisation_id: org.id, clerk_id: clerk.id, status: 'waiting', guest_token_hash: 'a'.repeat(64), guest_token_expires_at: new Date(Date.now() + 3_600_000) },
      { organisation_id: org.id, clerk_id: clerk.id, status: 'active', guest_token_hash: 'b'.repeat(64), guest_token_expires_at: new Date(Date.now() + 3_600_000) },
    ]);
    await db.current.knex('queue_entries').insert({ organisation_id: org.id, ticket_hash: 'c'.repeat(64) });
  });

  it('answers the figures in the Prometheus text format to an allowed address (loopback by default)', async () => {
    const res = await request(app()).get('/metrics').expect(200);
    assert.match(res.headers['content-type']!, /^text\/plain; version=0\.0\.4/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const text = res.text;
    for (const line of [
      'vclerk_calls{status="waiting"} 1',
      'vclerk_calls{status="active"} 1',
      'vclerk_media_rooms 3',
      'vclerk_media_workers 2',
      'vclerk_media_worker_alive{worker="0"} 1',
      'vclerk_media_worker_alive{worker="1"} 0',
      'vclerk_media_worker_routers{worker="0"} 3',
      'vclerk_recordings{status="recording"} 0',
      'vclerk_recordings{status="processing"} 0',
      'vclerk_queue_waiting 1',
      'vclerk_job_backlog{queue="recording.finalise"} 2',
      'vclerk_job_backlog{queue="retention.run"} 0',
      'vclerk_database_up 1',
      '# TYPE process_cpu_seconds_total counter',
    ]) assert.ok(text.split('\n').includes(line), `missing: ${line}`);
    assert.match(text, /^vclerk_info\{version="[^"]+",commit="[0-9a-f]*",tls="off",turn="no"\} 1$/m);
    assert.match(text, /^process_resident_memory_bytes \d+$/m);
    // Every sample line is name{labels} value.
    for (const line of text.trim().split('\n').filter((l) => !l.startsWith('#'))) assert.match(line, /^[a-z_]+(\{[^}]*\})? -?[\d.e+]+$/, line);
  });

  it('refuses other addresses with a plain 404, logged but not audited', async () => {
    const before = await auditCount();
    logged.length = 0;
    const res = await request(app({ VCLERK_METRICS_ALLOW: '10.0.0.0/8' })).get('/metrics').set('Accept', 'application/json').expect(404);
    assert.equal(res.body.error.code, 'not_found');
    assert.doesNotMatch(res.text, /vclerk_/);
    assert.equal(await auditCount(), before, 'no audit event per request');
    assert.ok(logged.some((l) => l.msg === 'metrics request refused'), 'the refusal is logged');
    await request(app({ VCLERK_METRICS_ALLOW: '' })).get('/metrics').expect(404);
  });

  it('admits any address with the bearer token, and no one with a wrong one', async () => {
    const closed = app({ VCLERK_METRICS_ALLOW: '', VCLERK_METRICS_TOKEN: TOKEN });
    await request(closed).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200, /vclerk_calls/);
    await request(closed).get('/metrics').set('Authorization', `Bearer ${TOKEN}x`).expect(404);
    await request(closed).get('/metrics').set('Authorization', `Basic ${TOKEN}`).expect(404);
  });

  it('through a proxy: refused unless the proxy is trusted and the forwarded client is allowed', async () => {
    // Not trusted: the socket address (the proxy's loopback) says nothing about the client.
    await request(app()).get('/metrics').set('X-Forwarded-For', '203.0.113.9').expect(404);
    await request(app()).get('/metrics').set('X-Forwarded-For', '127.0.0.1').expect(404);
    const proxied = app({ VCLERK_TRUST_PROXY: 'loopback', VCLERK_METRICS_ALLOW: '192.0.2.0/24' });
    await request(proxied).get('/metrics').set('X-Forwarded-For', '203.0.113.9').expect(404);
    await request(proxied).get('/metrics').set('X-Forwarded-For', '192.0.2.10').expect(200);
    await request(app({ VCLERK_METRICS_TOKEN: TOKEN })).get('/metrics').set('X-Forwarded-For', '203.0.113.9').set('Authorization', `Bearer ${TOKEN}`).expect(200);
  });

  it('without media or jobs in the process, shows what the database knows', async () => {
    const res = await request(createApp({ config: testConfig(), db: db.current.knex, logger, sessionSecret: TEST_SECRET })).get('/metrics').expect(200);
    assert.match(res.text, /^vclerk_calls\{status="active"\} 1$/m);
    assert.doesNotMatch(res.text, /vclerk_media_workers|vclerk_job_backlog/);
  });
});
