import pino from 'pino';
import { createApp } from '../app/app';
import { loadConfig } from '../config';
import { createKnex } from '../app/db/connection';
import request from 'supertest';
const config = loadConfig({ VCLERK_LOG_LEVEL: 'silent', VCLERK_LOG_REQUESTS: 'false' });
const db = createKnex('postgres://bench@127.0.0.1:1/none', 1);
const app = createApp({ config, db, logger: pino({ level: 'silent' }) });
(async () => {
  for (const [p, h] of [['/', {Accept:'text/html'}], ['/healthz', {}], ['/no-such-page', {Accept:'application/json'}], ['/', {Accept:'text/html','Accept-Encoding':'gzip'}]] as const) {
    const r = await request(app).get(p).set(h as any);
    console.log(p, r.status, JSON.stringify(r.headers), (r.text ?? '').length);
  }
  const r = await request(app).get('/no-such-page').set('Accept','application/json'); console.log(r.text);
  await db.destroy();
})();
