import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import request from 'supertest';
import { ConflictError, ValidationError } from '../app/core/errors';
import { createLogger } from '../app/core/logger';
import { routes, type Route, type RouteDeps } from '../app/routes';
import { anonymous } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/** The production route table plus routes that fail on purpose. */
function withFailingRoutes(ctx: RouteDeps): Route[] {
  return [
    ...routes(ctx),
    {
      method: 'get',
      access: 'public',
      path: '/test/conflict',
      handlers: [() => { throw new ConflictError('slot_taken'); }],
    },
    {
      method: 'post',
      access: 'public',
      path: '/test/validate',
      handlers: [() => { throw new ValidationError([{ field: 'name', code: 'required' }]); }],
    },
    {
      method: 'get',
      access: 'public',
      path: '/test/crash',
      handlers: [async () => { throw new Error('db password is hunter2, stack here'); }],
    },
  ];
}

describe('HTTP foundation', () => {
  const db = useTestDatabase();

  describe('health', () => {
    it('GET /healthz answers while the process is up', async () => {
      await request(buildApp(db.current)).get('/healthz').expect(200, { status: 'ok' }).expect('Cache-Control', 'no-store');
    });

    it('GET /readyz answers 200 when the database is reachable and migrated', async () => {
      const res = await request(buildApp(db.current)).get('/readyz').expect(200);
      assert.deepEqual(res.body, { status: 'ready', database: 'ok', migrations: 'current' });
    });
  });

  describe('security headers', () => {
    it('sends a strict Content-Security-Policy without inline script or style', async () => {
      const res = await request(buildApp(db.current)).get('/').expect(200);
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /style-src 'self'(;|$)/);
      assert.match(csp, /object-src 'none'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https:|\*/);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.equal(res.headers['x-powered-by'], undefined);
      assert.match(String(res.headers['permissions-policy']), /camera=\(self\)/);
    });
  });

  describe('request ids', () => {
    it('gives each response a fresh id', async () => {
      const app = buildApp(db.current);
      const a = await request(app).get('/healthz');
      const b = await request(app).get('/healthz');
      assert.match(String(a.headers['x-request-id']), /^[0-9a-f-]{36}$/);
      assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
    });

    it('keeps a well-formed incoming id and replaces a malformed one', async () => {
      const app = buildApp(db.current);
      await request(app).get('/healthz').set('X-Request-Id', 'proxy-1234abcd').expect('X-Request-Id', 'proxy-1234abcd');
      const res = await request(app).get('/healthz').set('X-Request-Id', 'bad id <script>');
      assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    });
  });

  describe('request log', () => {
    it('writes one line per request, with secret query values and headers kept out', async () => {
      const lines: string[] = [];
      const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
      const logger = createLogger({ logLevel: 'info' }, sink as unknown as pino.DestinationStream);
      const app = buildApp(db.current, { logger, env: { VCLERK_LOG_REQUESTS: 'true' } });
      await request(app)
        .get('/healthz?token=tok-SECRET-1&page=2')
        .set('Cookie', 'sid=cookie-SECRET-2')
        .set('Authorization', 'Bearer auth-SECRET-3')
        .expect(200);
      const entries = lines.map((l) => JSON.parse(l));
      const entry = entries.find((e) => e.msg === 'request completed');
      assert.ok(entry, 'a request line is written');
      assert.equal(entry.req.url, '/healthz?token=%5Bredacted%5D&page=2');
      assert.equal(entry.res.statusCode, 200);
      assert.doesNotMatch(lines.join('\n'), /SECRET/);
    });
  });

  describe('not found', () => {
    it('answers HTML to browsers', async () => {
      const res = await request(buildApp(db.current)).get('/no/such/page').set('Accept', 'text/html').expect(404);
      assert.match(res.headers['content-type'] ?? '', /text\/html/);
      assert.match(res.text, /Page not found/);
      assert.match(res.text, new RegExp(String(res.headers['x-request-id'])));
    });

    it('answers JSON with a stable code to API clients', async () => {
      const res = await request(buildApp(db.current)).get('/no/such/page').set('Accept', 'application/json').expect(404);
      assert.equal(res.body.error.code, 'not_found');
      assert.equal(res.body.error.requestId, res.headers['x-request-id']);
    });

    it('answers in the visitor\'s language', async () => {
      const res = await request(buildApp(db.current)).get('/nope').set('Accept-Language', 'de-DE,de;q=0.9').expect(404);
      assert.match(res.text, /Seite nicht gefunden/);
    });
  });

  describe('errors', () => {
    it('typed errors keep their status and stable code', async () => {
      const app = buildApp(db.current, { routes: withFailingRoutes });
      const res = await request(app).get('/test/conflict').set('Accept', 'application/json').expect(409);
      assert.equal(res.body.error.code, 'slot_taken');
    });

    it('validation errors list the offending fields', async () => {
      const app = buildApp(db.current, { routes: withFailingRoutes });
      const { agent, csrf } = await anonymous(app);
      const res = await agent.post('/test/validate').set('X-CSRF-Token', csrf).set('Accept', 'application/json').expect(400);
      assert.equal(res.body.error.code, 'validation_failed');
      assert.deepEqual(res.body.error.details, { fields: [{ field: 'name', code: 'required' }] });
    });

    it('malformed JSON bodies get 400 invalid_body', async () => {
      const app = buildApp(db.current, { routes: withFailingRoutes });
      const res = await request(app)
        .post('/test/validate')
        .set('Content-Type', 'application/json')
        .set('Accept', 'application/json')
        .send('{"name": ')
        .expect(400);
      assert.equal(res.body.error.code, 'invalid_body');
    });

    it('oversized bodies get 413 payload_too_large', async () => {
      const app = buildApp(db.current, { routes: withFailingRoutes });
      const res = await request(app)
        .post('/test/validate')
        .set('Content-Type', 'application/json')
        .set('Accept', 'application/json')
        .send(JSON.stringify({ big: 'x'.repeat(200 * 1024) }))
        .expect(413);
      assert.equal(res.body.error.code, 'payload_too_large');
    });

    it('unknown errors show a generic page with a tracking id; details go only to the log', async () => {
      const lines: string[] = [];
      const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
      const logger = createLogger({ logLevel: 'error' }, sink as unknown as pino.DestinationStream);
      const app = buildApp(db.current, { routes: withFailingRoutes, logger });

      const html = await request(app).get('/test/crash').set('Accept', 'text/html').expect(500);
      const id = String(html.headers['x-request-id']);
      assert.match(html.text, /Something went wrong/);
      assert.match(html.text, new RegExp(id));
      assert.doesNotMatch(html.text, /hunter2|stack|at .*\.ts/);

      const json = await request(app).get('/test/crash').set('Accept', 'application/json').expect(500);
      assert.equal(json.body.error.code, 'internal_error');
      assert.doesNotMatch(JSON.stringify(json.body), /hunter2/);

      const logged = lines.map((l) => JSON.parse(l)).find((l) => l.reqId === id);
      assert.ok(logged, 'the error is logged with the request id');
      assert.match(logged.err.message, /hunter2/);
      assert.match(logged.err.stack, /http\.test\.ts/);
    });
  });

  describe('static assets', () => {
    it('serves versioned CSS with long cache lifetime and compression', async () => {
      const app = buildApp(db.current);
      const page = await request(app).get('/').expect(200);
      const href = /href="(\/static\/css\/app\.css\?v=[0-9a-f]{12})"/.exec(page.text)?.[1];
      assert.ok(href, 'the page links the versioned stylesheet');
      const res = await request(app).get(href).set('Accept-Encoding', 'gzip').expect(200);
      assert.match(res.headers['content-type'] ?? '', /text\/css/);
      assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.equal(res.headers['content-encoding'], 'gzip');
    });

    it('serves the vendored CSS library from the appliance itself', async () => {
      const res = await request(buildApp(db.current)).get('/static/vendor/pico.min.css').expect(200);
      assert.match(res.headers['content-type'] ?? '', /text\/css/);
      assert.equal(res.headers['cache-control'], 'public, max-age=300');
    });

    it('answers 404 for missing assets and refuses path traversal', async () => {
      const app = buildApp(db.current);
      await request(app).get('/static/css/missing.css').expect(404);
      await request(app).get('/static/..%2f..%2fpackage.json').expect((res) => assert.ok([400, 403, 404].includes(res.status)));
    });
  });
});
