import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import { createServer, type TlsSetup } from '../app/net/tls';
import { createSelfSignedCertificate } from '../app/net/self-signed';
import { useTestDatabase } from './support/database';
import { assertBuilt, cleanEnv, compiledServer, freePort, mediaEnv, run, type Running } from './support/process';

interface HttpsAnswer {
  status: number;
  fingerprint: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request on a new connection, accepting any certificate, answering the certificate the server showed. */
function httpsGet(url: string): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { rejectUnauthorized: false, agent: false }, (res) => {
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

/** The compiled appliance serving HTTPS: a self-signed certificate made at the first start, or the organisation's files. */
describe('HTTPS', () => {
  const db = useTestDatabase();
  let dir: string;
  const running: Running[] = [];

  before(() => {
    assertBuilt();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-tls-'));
  });
  afterEach(async () => {
    for (const proc of running.splice(0)) {
      await proc.stop();
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function start(extra: Record<string, string>): Promise<{ proc: Running; port: number }> {
    const port = await freePort();
    const env = cleanEnv({ ...(await mediaEnv()), VCLERK_PORT: String(port), VCLERK_HOST: '127.0.0.1', DATABASE_URL: db.current.url, VCLERK_DATA_DIR: path.join(dir, 'data'), ...extra });
    const proc = run(compiledServer, [], env);
    running.push(proc);
    return { proc, port };
  }

  async function stop(proc: Running): Promise<void> {
    // The shutdown handlers are in place once start-up is over (the setup link is the last step on a fresh database).
    await proc.waitFor(/not set up yet/);
    const exit = await proc.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, `exit ${JSON.stringify(exit)}; output:\n${proc.output().slice(-3000)}`);
  }

  it('self-signed: makes a certificate at the first start, logs its fingerprint, serves it, and keeps it across restarts', async () => {
    const { proc, port } = await start({ VCLERK_TLS: 'self-signed' });
    await proc.waitFor(/VClerk is listening on https:\/\//);
    const warning = JSON.parse(await proc.waitFor(/self-signed certificate: browsers will warn/)) as { level: string; fingerprint: string; msg: string };
    assert.equal(warning.level, 'warn');
    assert.match(warning.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.ok(warning.msg.includes(warning.fingerprint), 'the message itself names the fingerprint');

    const health = await httpsGet(`https://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(health.fingerprint, warning.fingerprint, 'the served certificate is the logged one');

    const certFile = path.join(dir, 'data', 'tls', 'self-signed.crt');
    const keyFile = path.join(dir, 'data', 'tls', 'self-signed.key');
    assert.equal(fs.statSync(keyFile).mode & 0o077, 0, 'the key is readable by the owner only');
    const cert = new crypto.X509Certificate(fs.readFileSync(certFile));
    assert.equal(cert.fingerprint256, warning.fingerprint);
    assert.ok(cert.checkHost('localhost') && cert.checkIP('127.0.0.1'), 'covers localhost and 127.0.0.1');

    // The sign-in form's CSRF cookie (an anonymous visitor gets no session row) is Secure over HTTPS.
    const login = await httpsGet(`https://127.0.0.1:${port}/login`);
    assert.equal(login.status, 200);
    const cookie = String(login.headers['set-cookie']);
    assert.match(cookie, /vclerk_csrf=/);
    assert.match(cookie, /;\s*Secure/i);
    await stop(proc);

    const again = await start({ VCLERK_TLS: 'self-signed' });
    await again.proc.waitFor(/VClerk is listening on https:\/\//);
    assert.equal((await httpsGet(`https://127.0.0.1:${again.port}/healthz`)).fingerprint, warning.fingerprint, 'the same certificate after a restart');
    assert.doesNotMatch(again.proc.output(), /made a self-signed TLS certificate/);
    await stop(again.proc);
  });

  it('files: serves the given certificate and key', async () => {
    const made = createSelfSignedCertificate({ commonName: 'vclerk.test', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000 * 90) });
    const certFile = path.join(dir, 'org.crt');
    const keyFile = path.join(dir, 'org.key');
    fs.writeFileSync(certFile, made.certPem);
    fs.writeFileSync(keyFile, made.keyPem, { mode: 0o600 });
    const expected = new crypto.X509Certificate(made.certPem).fingerprint256;

    const { proc, port } = await start({ VCLERK_TLS: 'files', VCLERK_TLS_CERT_FILE: certFile, VCLERK_TLS_KEY_FILE: keyFile });
    await proc.waitFor(/VClerk is listening on https:\/\//);
    assert.equal(JSON.parse(await proc.waitFor(/HTTPS with the given certificate/)).fingerprint, expected);
    const health = await httpsGet(`https://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(health.fingerprint, expected);
    assert.match(health.headers['strict-transport-security'] as string, /max-age=/);
    await stop(proc);
  });

  it('refuses to start with a key that does not belong to the certificate, or with half a setting', async () => {
    const a = createSelfSignedCertificate({ commonName: 'a', dnsNames: ['localhost'], ipAddresses: [], notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) });
    const b = createSelfSignedCertificate({ commonName: 'b', dnsNames: ['localhost'], ipAddresses: [], notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) });
    fs.writeFileSync(path.join(dir, 'a.crt'), a.certPem);
    fs.writeFileSync(path.join(dir, 'b.key'), b.keyPem);
    const mismatch = await start({ VCLERK_TLS: 'files', VCLERK_TLS_CERT_FILE: path.join(dir, 'a.crt'), VCLERK_TLS_KEY_FILE: path.join(dir, 'b.key') });
    assert.equal((await mismatch.proc.finished()).code, 78, mismatch.proc.output());
    assert.match(mismatch.proc.output(), /the key does not belong to the certificate/);
    assert.doesNotMatch(mismatch.proc.output(), /PRIVATE KEY/);

    const half = await start({ VCLERK_TLS: 'files', VCLERK_TLS_CERT_FILE: path.join(dir, 'a.crt') });
    assert.equal((await half.proc.finished()).code, 78, half.proc.output());
    assert.match(half.proc.output(), /VCLERK_TLS=files needs both VCLERK_TLS_CERT_FILE and VCLERK_TLS_KEY_FILE/);

    const turn = await start({ VCLERK_TURN_URLS: 'turn:turn.example.org:3478' });
    assert.equal((await turn.proc.finished()).code, 78, turn.proc.output());
    assert.match(turn.proc.output(), /TURN needs both VCLERK_TURN_URLS and VCLERK_TURN_SECRET/);
  });
});

/** The cipher policy of the HTTPS server itself (in this process, no build needed): AEAD suites only, TLS 1.2 and 1.3. */
describe('HTTPS cipher policy', () => {
  let server: http.Server;
  let port: number;

  before(async () => {
    const made = createSelfSignedCertificate({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000) });
    const setup: TlsSetup = { mode: 'self-signed', cert: Buffer.from(made.certPem), key: Buffer.from(made.keyPem), fingerprint: '', notAfter: new Date(), certFile: '' };
    server = createServer(setup, (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  type Outcome = { ok: true; cipher: string; protocol: string | null } | { ok: false; error: string };

  /** One handshake with the given client settings; the connection is closed right after. */
  function handshake(options: tls.ConnectionOptions): Promise<Outcome> {
    return new Promise((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
      socket.once('secureConnect', () => {
        const outcome: Outcome = { ok: true, cipher: socket.getCipher().name, protocol: socket.getProtocol() };
        socket.destroy();
        resolve(outcome);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        socket.destroy();
        resolve({ ok: false, error: err.code ?? err.message });
      });
    });
  }

  it('refuses a client that offers only CBC suites (TLS 1.2)', async () => {
    for (const cipher of ['ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'AES128-SHA', 'AES128-SHA256']) {
      const outcome = await handshake({ ciphers: cipher, maxVersion: 'TLSv1.2' });
      assert.equal(outcome.ok, false, `${cipher} must not be accepted: ${JSON.stringify(outcome)}`);
    }
  });

  it('accepts the AEAD suites of TLS 1.2, in the server\'s order, and TLS 1.3', async () => {
    for (const cipher of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
      assert.deepEqual(await handshake({ ciphers: cipher, maxVersion: 'TLSv1.2' }), { ok: true, cipher, protocol: 'TLSv1.2' });
    }
    // The client prefers ChaCha20, the server's order (AES-GCM first) wins.
    const ordered = await handshake({ ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' });
    assert.deepEqual(ordered, { ok: true, cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256', protocol: 'TLSv1.2' });
    const modern = await handshake({});
    assert.equal(modern.ok, true);
    assert.equal(modern.ok && modern.protocol, 'TLSv1.3');
  });

  it('refuses TLS 1.1 and 1.0', async () => {
    // The client's own OpenSSL would refuse the old versions at its default security level; level 0 lets it try.
    for (const version of ['TLSv1.1', 'TLSv1'] as const) {
      const outcome = await handshake({ minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' });
      assert.equal(outcome.ok, false, `${version}: ${JSON.stringify(outcome)}`);
    }
  });
});
