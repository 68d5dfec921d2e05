import assert from 'node:assert/strict';
import express from 'express';
import request from 'supertest';
import type { Socket } from 'socket.io';
import { CallService } from '../app/calls/service';
import { CallRefusal } from '../app/calls/refusal';
import { identify } from '../app/calls/signalling-auth';
import { clientAddress, trustProxyFunction } from '../app/net/addresses';
import { csrfFrom, seedOrganisation, seedUser } from './support/accounts';
import { buildApp } from './support/context';
import { useTestDatabase } from './support/database';

/**
 * Plain HTTP behind the organisation's reverse proxy: client addresses in
 * the audit trail come from X-Forwarded-For only when VCLERK_TRUST_PROXY
 * trusts the proxy, over HTTP and in the signalling server alike.
 */
describe('client addresses behind a reverse proxy', () => {
  const db = useTestDatabase();

  async function failedLoginIp(env: Record<string, string>, forwardedFor: string): Promise<string> {
    const app = buildApp(db.current, { env });
    const org = await seedOrganisation(db.current.knex);
    const user = await seedUser(db.current.knex, org, 'clerk');
    const agent = request.agent(app);
    const page = await agent.get('/login').set('X-Forwarded-For', forwardedFor);
    await agent.post('/login').set('X-Forwarded-For', forwardedFor).type('form').send({ _csrf: csrfFrom(page.text), email: user.email, password: 'not the password' });
    const event = await db.current.knex('audit_events').where({ action: 'auth.login_failed', organisation_id: org.id }).orderBy('seq', 'desc').first('ip');
    assert.ok(event, 'the failed sign-in is audited');
    return event.ip as string;
  }

  it('ignores X-Forwarded-For when no proxy is trusted (the default)', async () => {
    const ip = await failedLoginIp({}, '203.0.113.9');
    assert.notEqual(ip, '203.0.113.9');
    assert.match(ip, /127\.0\.0\.1|::1/);
  });

  it('takes the client from X-Forwarded-For when the proxy is trusted', async () => {
    assert.equal(await failedLoginIp({ VCLERK_TRUST_PROXY: 'loopback' }, '203.0.113.9'), '203.0.113.9');
    // One trusted hop: the address the proxy saw, not what the client claimed before it.
    assert.equal(await failedLoginIp({ VCLERK_TRUST_PROXY: '1' }, '198.51.100.7, 203.0.113.9'), '203.0.113.9');
  });

  it('ignores X-Forwarded-For from a proxy outside the trusted range', async () => {
    const ip = await failedLoginIp({ VCLERK_TRUST_PROXY: '10.0.0.0/8' }, '203.0.113.9');
    assert.notEqual(ip, '203.0.113.9');
  });

  it('the signalling server picks the same address as Express for every trust setting', async () => {
    const settings = ['', '1', '2', 'loopback', '10.0.0.0/8', '127.0.0.1,10.0.0.0/8', '::1,127.0.0.0/8', 'uniquelocal,loopback'];
    const chains = ['203.0.113.9', '203.0.113.9, 10.0.0.5', '198.51.100.7, 203.0.113.9, 10.1.2.3', '2001:db8::5'];
    for (const setting of settings) {
      const app = express();
      app.set('trust proxy', setting === '' ? false : /^\d+$/.test(setting) ? Number(setting) : setting);
      app.get('/', (req, res) => {
        res.json({ express: req.ip, ours: clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], trustProxyFunction(setting)) });
      });
      for (const chain of chains) {
        const res = await request(app).get('/').set('X-Forwarded-For', chain).expect(200);
        assert.equal(res.body.ours, res.body.express, `trust "${setting}", X-Forwarded-For "${chain}"`);
      }
    }
  });

  it('signalling refusals are audited with the forwarded address only from a trusted proxy', async () => {
    const calls = new CallService(db.current.knex);
    const socket = (address: string) => ({ handshake: { auth: { token: 'nonsense' }, address, headers: { 'x-forwarded-for': '203.0.113.9', 'user-agent': 'test' } } }) as unknown as Socket;
    const refusedIp = async (address: string, trust?: string) => {
      await assert.rejects(identify(socket(address), { knex: db.current.knex, calls, absoluteHours: 12, trustProxy: trust === undefined ? undefined : trustProxyFunction(trust) }), CallRefusal);
      const event = await db.current.knex('audit_events').where({ action: 'security.signalling_refused' }).orderBy('seq', 'desc').first('ip');
      return event!.ip as string;
    };
    assert.equal(await refusedIp('::ffff:127.0.0.1'), '::ffff:127.0.0.1', 'without a trust setting: the socket address');
    assert.equal(await refusedIp('::ffff:127.0.0.1', ''), '::ffff:127.0.0.1', 'no proxy trusted');
    assert.equal(await refusedIp('::ffff:127.0.0.1', 'loopback'), '203.0.113.9', 'trusted proxy on loopback');
    assert.equal(await refusedIp('192.0.2.44', 'loopback'), '192.0.2.44', 'a proxy outside the trusted range');
  });
});
