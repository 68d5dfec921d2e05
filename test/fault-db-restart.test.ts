import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import type { Socket } from 'socket.io-client';
import request from 'supertest';
import { ApiKeyService } from '../app/api-keys/service';
import { AuditService } from '../app/audit/service';
import { CallService } from '../app/calls/service';
import { createKnex } from '../app/db/connection';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../app/db/embedded';
import { migrateDatabase } from '../app/db/prepare';
import { csrfFrom, PASSWORD, seedOrganisation, seedUser, type SeededOrganisation, type SeededUser } from './support/accounts';
import { startCallServer, type CallServer } from './support/call-server';
import { silentLogger, testConfig, TEST_SECRET } from './support/context';
import crypto from 'node:crypto';
import { createApp } from '../app/app';
import { sessionMiddleware, SESSION_COOKIE } from '../app/access/session';
import type { TestDatabase } from './support/database';
import { freePort } from './support/process';
import { translator } from '../app/i18n';
import { ask, connect, join, ok, sessionCookie } from './support/signal-client';

/**
 * Issue 17, a fault: PostgreSQL is killed (SIGKILL to its postmaster) and
 * started again while a steady stream of work runs against the real
 * appliance on loopback: staff signing in, an API key creating call links,
 * an admin posting a form, customers joining calls through signalling and
 * chat messages in a running call. Every answer during the outage is a
 * clean refusal (HTTP 503 `database_unavailable` with a message; a
 * signalling ack or connect error with that code), none takes longer than
 * a bound; after PostgreSQL is back, every operation that was answered as
 * done exists exactly once, every refused one left nothing behind, and the
 * audit chains verify without a gap. A PostgreSQL server of its own (not
 * the shared test server), so that killing it disturbs no other file.
 */

const BOUND_MS = 12_000;
const UNAVAILABLE = 'database_unavailable';

type Kind = 'signin' | 'api' | 'form' | 'join' | 'chat';
interface Outcome {
  kind: Kind;
  n: number;
  startedAt: number;
  ms: number;
  ok: boolean;
  /** HTTP status, or 0 for signalling. */
  status: number;
  code: string | null;
  message: string | null;
  callId?: string;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;');
}

function callerFor(user: SeededUser, org: SeededOrganisation) {
  return { user: { id: user.id, organisationId: org.id, organisationSlug: org.slug, organisationName: org.name, organisationBrandVersion: 0, name: user.name, email: user.email, role: user.role, language: null }, ip: '127.0.0.1', userAgent: 'test', sessionId: 'test' };
}

/** The error an HTTP answer carries: its JSON `error`, or the code and message an error page shows. */
function httpError(res: request.Response): { code: string | null; message: string | null } {
  const body = res.body as { error?: { code?: string; message?: string } };
  if (body?.error) return { code: body.error.code ?? null, message: body.error.message ?? null };
  // An error page shows the message (in the reader's language: English here), not the code.
  const text = res.text ?? '';
  const message = /<h1 id="error-title">[^<]*<\/h1>\s*<p>([^<]*)<\/p>/.exec(text)?.[1] ?? null;
  return { code: message === escapeHtml(translator('en')(`errors.${UNAVAILABLE}`)) ? UNAVAILABLE : `page ${res.status}`, message };
}

describe('fault: PostgreSQL restarts during joins, chat and audit writes', function () {
  this.timeout(120_000);
  let dir: string;
  let pg: EmbeddedPostgresHandle;
  let knex: Knex;
  let server: CallServer;
  let org: SeededOrganisation;
  let admin: SeededUser;
  let clerk: SeededUser;
  let apiKey: string;
  const sockets: Socket[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-fault-db-'));
    fs.chmodSync(dir, 0o755);
    pg = await startEmbeddedPostgres({ dataDir: dir, port: await freePort(), logger: silentLogger });
    await pg.createDatabase('vclerk');
    knex = createKnex(pg.url('vclerk'), 10);
    await migrateDatabase({ knex, owner: null, appRole: null, databaseName: 'vclerk' });
    org = await seedOrganisation(knex, 'Fault Bank');
    admin = await seedUser(knex, org, 'admin');
    clerk = await seedUser(knex, org, 'clerk');
    apiKey = (await new ApiKeyService(knex, callerFor(admin, org) as never).create({ name: 'CRM', scopes: ['calls:read', 'calls:write'], own_key: undefined })).key;
    server = await startCallServer({ knex } as TestDatabase);
  });

  after(async () => {
    for (const socket of sockets) socket.close();
    await server?.close();
    await knex?.destroy();
    await pg?.stop().catch(() => undefined);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a session store out of reach: a page already written is still delivered, a session that cannot be read answers 503', async () => {
    // (express-session signs its cookie as cookie-signature does: `s:` id `.` base64 HMAC-SHA256 without padding.)
    // The sessions on a server that does not answer, the rest on the live database.
    const dead = createKnex(`postgres://nobody:none@127.0.0.1:${await freePort()}/none`, 1);
    try {
      const app = createApp({ config: testConfig(), db: knex, logger: silentLogger, sessionSecret: TEST_SECRET, session: sessionMiddleware(dead, { secret: TEST_SECRET, idleMinutes: 30 }) });
      // The sign-in page puts a CSRF token into a new session, saved after the page is written: that save fails.
      const page = await request(app).get('/login').set('Accept-Encoding', 'gzip');
      assert.equal(page.status, 200, 'the page arrives whole; the connection is not cut');
      assert.match(page.text, /<\/html>/);
      // A visitor with a session cookie: the session cannot be read, so nothing can be done.
      const cookie = `${SESSION_COOKIE}=${encodeURIComponent(`s:some-session-id.${crypto.createHmac('sha256', TEST_SECRET).update('some-session-id').digest('base64').replace(/=+$/, '')}`)}`;
      const html = await request(app).get('/dashboard').set('Cookie', cookie).set('Accept', 'text/html').expect(503);
      assert.equal(html.headers['retry-after'], '5');
      assert.match(html.text, new RegExp(escapeHtml(translator('en')(`errors.${UNAVAILABLE}`)).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      const german = await request(app).get('/dashboard').set('Cookie', cookie).set('Accept', 'text/html').set('Accept-Language', 'de').expect(503);
      assert.ok(german.text.includes(escapeHtml(translator('de')(`errors.${UNAVAILABLE}`))), 'in the reader\'s language');
      const json = await request(app).get('/dashboard').set('Cookie', cookie).set('Accept', 'application/json').expect(503);
      assert.equal((json.body as { error: { code: string } }).error.code, UNAVAILABLE);
    } finally {
      await dead.destroy();
    }
  });

  it('answers every request during the outage cleanly, recovers, and loses or doubles nothing', async () => {
    const url = server.url;
    const clerkCookie = await sessionCookie(url, clerk);
    // The admin's form session and its CSRF token, before the outage.
    const adminAgent = request.agent(url);
    const login = await adminAgent.get('/login').expect(200);
    await adminAgent.post('/login').type('form').send({ _csrf: csrfFrom(login.text), email: admin.email, password: PASSWORD }).expect(303);
    const formCsrf = csrfFrom((await adminAgent.get('/admin/catalog/new').expect(200)).text);
    // Calls for customers to join, and one running call with both sides in it for the chat.
    const calls = new CallService(knex);
    const waiting: { callId: string; token: string }[] = [];
    for (let i = 0; i < 60; i++) {
      const { call, token } = await calls.start(callerFor(clerk, org) as never, 1);
      waiting.push({ callId: call.id, token });
    }
    const chatCall = await calls.start(callerFor(clerk, org) as never, 1);
    const chatClerk = await connect(url, { callId: chatCall.call.id }, clerkCookie);
    const chatCustomer = await connect(url, { token: chatCall.token });
    sockets.push(chatClerk, chatCustomer);
    await join(chatClerk);
    await join(chatCustomer);
    const auditBefore = Number((await knex('audit_events').count({ n: '*' }))[0]!.n);
    const signinsBefore = Number((await knex('audit_events').where({ action: 'auth.login_succeeded', actor_id: clerk.id }).count({ n: '*' }))[0]!.n);

    const outcomes: Outcome[] = [];
    let stop = false;
    const counter: Record<Kind, number> = { signin: 0, api: 0, form: 0, join: 0, chat: 0 };

    async function timed(kind: Kind, op: (n: number) => Promise<Omit<Outcome, 'kind' | 'n' | 'startedAt' | 'ms'>>): Promise<void> {
      const n = ++counter[kind];
      const startedAt = Date.now();
      let result: Omit<Outcome, 'kind' | 'n' | 'startedAt' | 'ms'>;
      try {
        result = await op(n);
      } catch (err) {
        result = { ok: false, status: -1, code: 'client_error', message: (err as Error).message };
      }
      outcomes.push({ kind, n, startedAt, ms: Date.now() - startedAt, ...result });
    }

    const http = (req: request.Test) => req.timeout(BOUND_MS).ok(() => true);
    const streams: Record<Kind, (n: number) => Promise<Omit<Outcome, 'kind' | 'n' | 'startedAt' | 'ms'>>> = {
      async signin() {
        const agent = request.agent(url);
        const page = await http(agent.get('/login'));
        if (page.status !== 200) return { ok: false, status: page.status, ...httpError(page) };
        const res = await http(agent.post('/login').type('form').send({ _csrf: csrfFrom(page.text), email: clerk.email, password: PASSWORD }));
        const done = res.status === 303 && res.headers.location === '/dashboard';
        return { ok: done, status: res.status, ...(done ? { code: null, message: null } : httpError(res)) };
      },
      async api(n) {
        const res = await http(request(url).post('/api/v1/call-links').set('Authorization', `Bearer ${apiKey}`).send({ clerkId: clerk.id, reference: `api-${n}` }));
        return { ok: res.status === 201, status: res.status, ...(res.status === 201 ? { code: null, message: null } : httpError(res)), callId: (res.body as { call?: { id: string } }).call?.id };
      },
      async form(n) {
        const res = await http(adminAgent.post('/admin/catalog/new').type('form').set('Accept', 'text/html').send({ _csrf: formCsrf, sku: `F-${n}`, name: `Fault ${n}`, price: '1', currency: 'EUR' }));
        return { ok: res.status === 303, status: res.status, ...(res.status === 303 ? { code: null, message: null } : httpError(res)) };
      },
      async join(n) {
        const call = waiting[n - 1];
        if (!call) return { ok: false, status: 0, code: 'no_call_left', message: null };
        let socket: Socket;
        try {
          socket = await Promise.race([connect(url, { token: call.token }), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('connect timeout')), BOUND_MS))]);
        } catch (err) {
          return { ok: false, status: 0, code: (err as Error).message, message: null, callId: call.callId };
        }
        sockets.push(socket);
        const caps = await ask(socket, 'getRouterRtpCapabilities');
        if (!caps.ok) return { ok: false, status: 0, code: caps.error.code, message: caps.error.message, callId: call.callId };
        const joined = await ask(socket, 'join', { rtpCapabilities: caps.data.rtpCapabilities });
        return joined.ok ? { ok: true, status: 0, code: null, message: null, callId: call.callId } : { ok: false, status: 0, code: joined.error.code, message: joined.error.message, callId: call.callId };
      },
      async chat(n) {
        const ack = await ask(chatCustomer, 'chat.send', { text: `chat-${n}` });
        return ack.ok ? { ok: true, status: 0, code: null, message: null } : { ok: false, status: 0, code: ack.error.code, message: ack.error.message };
      },
    };
    const loops = (Object.keys(streams) as Kind[]).map(async (kind) => {
      while (!stop) {
        await timed(kind, streams[kind]);
        // Joins use up a call each: paced so that the calls last through the outage. Chat stays
        // under a connection's feature-request rate (REQUEST_LIMITS.moduleRate, 5 a second).
        await new Promise((r) => setTimeout(r, kind === 'join' ? 300 : kind === 'chat' ? 250 : 100));
      }
    });

    // Steady state, then the outage: PostgreSQL killed, down for a while, started again.
    await new Promise((r) => setTimeout(r, 2000));
    const killedAt = Date.now();
    const postmaster = Number(fs.readFileSync(path.join(fs.realpathSync(path.join(dir, 'postgres')), 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(postmaster, 'SIGKILL');
    for (let i = 0; i < 100 && pg.alive(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(pg.alive(), false, 'PostgreSQL is down');
    await new Promise((r) => setTimeout(r, 3000));
    await pg.restart();
    const backAt = Date.now();
    // Until every stream has succeeded twice after PostgreSQL came back (bounded).
    const kinds = Object.keys(streams) as Kind[];
    for (let i = 0; i < 300; i++) {
      if (kinds.every((k) => outcomes.filter((o) => o.kind === k && o.ok && o.startedAt >= backAt).length >= 2)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    stop = true;
    await Promise.all(loops);

    // The report: per stream, answers during the outage and the time to the first success after PostgreSQL was back.
    const report: string[] = [];
    const recovery: Record<string, number | null> = {};
    for (const kind of kinds) {
      const mine = outcomes.filter((o) => o.kind === kind);
      const firstAfter = mine.filter((o) => o.ok && o.startedAt + o.ms >= backAt).sort((a, b) => a.startedAt + a.ms - (b.startedAt + b.ms))[0];
      recovery[kind] = firstAfter ? firstAfter.startedAt + firstAfter.ms - backAt : null;
      const refusals = mine.filter((o) => !o.ok).map((o) => `${o.status || 'ack'} ${o.code}`);
      const counts = Object.entries(refusals.reduce<Record<string, number>>((m, r) => ({ ...m, [r]: (m[r] ?? 0) + 1 }), {})).map(([r, c]) => `${c}× ${r}`);
      report.push(`${kind.padEnd(6)} ${mine.filter((o) => o.ok).length} done, ${mine.length - mine.filter((o) => o.ok).length} refused (${counts.join(', ') || 'none'}), slowest ${Math.max(...mine.map((o) => o.ms))} ms, first success ${recovery[kind]} ms after PostgreSQL was back`);
    }
    console.log(`      PostgreSQL down ${backAt - killedAt} ms\n${report.map((l) => `      ${l}`).join('\n')}`);

    // Every answer in bound; every refusal a clean one with the stable code.
    const slow = outcomes.filter((o) => o.ms > BOUND_MS);
    assert.deepEqual(slow.map((o) => `${o.kind} #${o.n}: ${o.ms} ms`), [], 'no answer took longer than the bound');
    const unclean = outcomes.filter((o) => !o.ok && !((o.status === 503 || o.status === 0) && o.code === UNAVAILABLE));
    assert.deepEqual(unclean.map((o) => `${o.kind} #${o.n} at ${o.startedAt - killedAt} ms: ${o.status} ${o.code} ${o.message}`), [], 'every refusal is a 503 or an ack with database_unavailable');
    for (const o of outcomes.filter((x) => !x.ok && x.status === 503)) assert.ok(o.message && o.message.length > 0, 'a 503 says what happened');
    for (const kind of kinds) assert.notEqual(recovery[kind], null, `${kind} works again after PostgreSQL is back`);

    // Nothing lost or doubled: each success exists exactly once; each refusal left nothing.
    const done = (kind: Kind) => outcomes.filter((o) => o.kind === kind && o.ok);
    const refused = (kind: Kind) => outcomes.filter((o) => o.kind === kind && !o.ok);
    const signins = Number((await knex('audit_events').where({ action: 'auth.login_succeeded', actor_id: clerk.id }).count({ n: '*' }))[0]!.n) - signinsBefore;
    assert.equal(signins, done('signin').length, 'one sign-in event per sign-in answered as done');
    for (const o of outcomes.filter((x) => x.kind === 'api')) {
      const rows = await knex('calls').where({ reference: `api-${o.n}` }).select('id');
      assert.equal(rows.length, o.ok ? 1 : 0, `call link api-${o.n} (${o.ok ? 'done' : 'refused'}) exists ${rows.length} times`);
      if (o.ok) assert.equal(Number((await knex('audit_events').where({ action: 'call.started', target_id: rows[0]!.id }).count({ n: '*' }))[0]!.n), 1);
    }
    for (const o of outcomes.filter((x) => x.kind === 'form')) {
      const rows = await knex('products').where({ sku: `F-${o.n}` }).select('id');
      assert.equal(rows.length, o.ok ? 1 : 0, `product F-${o.n} (${o.ok ? 'done' : 'refused'}) exists ${rows.length} times`);
      if (o.ok) assert.equal(Number((await knex('audit_events').where({ action: 'catalog.product_created', target_id: rows[0]!.id }).count({ n: '*' }))[0]!.n), 1);
    }
    for (const o of outcomes.filter((x) => x.kind === 'join' && x.callId)) {
      const joins = Number((await knex('audit_events').where({ action: 'call.joined', target_id: o.callId, actor_type: 'guest' }).count({ n: '*' }))[0]!.n);
      assert.equal(joins, o.ok ? 1 : 0, `join of ${o.callId} (${o.ok ? 'done' : 'refused'}) audited ${joins} times`);
    }
    for (const o of [...done('chat'), ...refused('chat')]) {
      const rows = Number((await knex('call_messages').where({ call_id: chatCall.call.id, body: `chat-${o.n}` }).count({ n: '*' }))[0]!.n);
      assert.equal(rows, o.ok ? 1 : 0, `chat-${o.n} (${o.ok ? 'done' : 'refused'}) stored ${rows} times`);
    }

    // The audit chains verify: no gap, no sequence number twice.
    const audit = new AuditService(knex);
    for (const chain of [org.id, null]) {
      const result = await audit.verify(chain);
      assert.ok(result.ok, `the chain of ${chain ?? 'the appliance'} verifies: ${JSON.stringify(result.broken)}`);
    }
    const { rows } = await knex.raw('SELECT chain, count(*)::int AS n, max(seq)::int AS top, count(DISTINCT seq)::int AS distinct_seqs FROM audit_events GROUP BY chain');
    for (const r of rows as { chain: string; n: number; top: number; distinct_seqs: number }[]) {
      assert.equal(r.n, r.top, `chain ${r.chain}: no gap`);
      assert.equal(r.distinct_seqs, r.n, `chain ${r.chain}: no sequence number twice`);
    }
    assert.ok(Number((await knex('audit_events').count({ n: '*' }))[0]!.n) > auditBefore, 'audit events were written');

    // The appliance still answers, and the running call's chat works.
    await request(url).get('/login').expect(200);
    await ok(chatCustomer, 'chat.send', { text: 'after' });
  });
});
