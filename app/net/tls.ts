import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { RequestListener } from 'node:http';
import type { Config } from '../../config';
import type { Logger } from '../core/logger';
import { createSelfSignedCertificate } from './self-signed';

/**
 * How the appliance serves HTTP (VCLERK_TLS): plain HTTP (`off`, the
 * default: behind the organisation's reverse proxy, which terminates TLS),
 * HTTPS with the organisation's certificate (`files`), or HTTPS with a
 * self-signed certificate made at the first start (`self-signed`). The
 * session cookie is Secure whenever the request came over HTTPS (directly,
 * or through a trusted proxy saying so): express-session's `secure: 'auto'`.
 */
export type TlsSetup =
  | { mode: 'off' }
  | { mode: 'files' | 'self-signed'; cert: Buffer; key: Buffer; fingerprint: string; notAfter: Date; certFile: string };

/** A TLS setting that cannot work (missing or unreadable file, key not matching): the process exits as for a bad configuration. */
export class TlsConfigError extends Error {}

/** A new self-signed certificate is made when the current one has less than this left. */
const RENEW_BEFORE_MS = 30 * 86_400_000;
const SELF_SIGNED_DAYS = 397;

type TlsConfig = Pick<Config, 'tls' | 'tlsCertFile' | 'tlsKeyFile' | 'dataDir' | 'host' | 'publicUrl' | 'mediaAnnouncedAddress'>;

/**
 * The HTTPS setup for a loaded configuration (whose rules across the TLS
 * settings config/rules.ts has checked). Throws TlsConfigError when the
 * files cannot be read or do not hold a certificate and its key.
 */
export function resolveTls(config: TlsConfig, logger: Logger, now = new Date()): TlsSetup {
  if (config.tls === 'off') return { mode: 'off' };
  if (config.tls === 'files') {
    const setup = load('files', config.tlsCertFile ?? '', config.tlsKeyFile ?? '');
    const daysLeft = Math.floor((setup.notAfter.getTime() - now.getTime()) / 86_400_000);
    if (daysLeft < 0) logger.error({ certFile: setup.certFile, notAfter: setup.notAfter.toISOString() }, 'the TLS certificate has expired: browsers will refuse it');
    else if (daysLeft < 14) logger.warn({ certFile: setup.certFile, notAfter: setup.notAfter.toISOString(), daysLeft }, 'the TLS certificate expires soon: replace it and restart');
    logger.info({ certFile: setup.certFile, fingerprint: setup.fingerprint, notAfter: setup.notAfter.toISOString() }, 'HTTPS with the given certificate');
    return setup;
  }
  return selfSigned(config, logger, now);
}

function load(mode: 'files' | 'self-signed', certFile: string, keyFile: string): Extract<TlsSetup, { mode: 'files' | 'self-signed' }> {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = fs.readFileSync(certFile);
    key = fs.readFileSync(keyFile);
  } catch (err) {
    throw new TlsConfigError(`cannot read the TLS certificate or key: ${(err as NodeJS.ErrnoException).code ?? 'error'} (${certFile}, ${keyFile})`);
  }
  let x509: crypto.X509Certificate;
  try {
    x509 = new crypto.X509Certificate(cert);
    tls.createSecureContext({ cert, key });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' ? 'the key does not belong to the certificate' : 'not a PEM certificate and private key';
    throw new TlsConfigError(`invalid TLS certificate or key (${certFile}, ${keyFile}): ${reason}`);
  }
  return { mode, cert, key, fingerprint: x509.fingerprint256, notAfter: new Date(x509.validTo), certFile };
}

/** The names a self-signed certificate should cover: localhost, this machine, and the configured addresses. */
function wantedNames(config: TlsConfig): { dnsNames: string[]; ipAddresses: string[] } {
  const dns = new Set(['localhost']);
  const ips = new Set(['127.0.0.1', '::1']);
  const add = (name: string | undefined) => {
    if (!name || name === '0.0.0.0' || name === '::') return;
    const bare = name.replace(/^\[|\]$/g, '');
    if (net.isIP(bare)) ips.add(bare);
    else if (/^[A-Za-z0-9.-]+$/.test(bare)) dns.add(bare.toLowerCase());
  };
  add(os.hostname());
  add(config.host);
  add(config.mediaAnnouncedAddress);
  if (config.publicUrl) add(new URL(config.publicUrl).hostname);
  return { dnsNames: [...dns], ipAddresses: [...ips] };
}

function selfSigned(config: TlsConfig, logger: Logger, now: Date): TlsSetup {
  const dir = path.resolve(config.dataDir, 'tls');
  const certFile = path.join(dir, 'self-signed.crt');
  const keyFile = path.join(dir, 'self-signed.key');
  const names = wantedNames(config);
  let reason: string | null = null;
  if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) reason = 'first start';
  else {
    try {
      const current = load('self-signed', certFile, keyFile);
      const x509 = new crypto.X509Certificate(current.cert);
      if (current.notAfter.getTime() - now.getTime() < RENEW_BEFORE_MS) reason = 'the certificate expires soon';
      else if (!names.dnsNames.every((n) => x509.checkHost(n, { wildcards: false })) || !names.ipAddresses.every((ip) => x509.checkIP(ip))) reason = 'the host names or addresses changed';
    } catch (err) {
      if (!(err instanceof TlsConfigError)) throw err;
      reason = 'the stored certificate is unreadable';
    }
  }
  if (reason) {
    const made = createSelfSignedCertificate({
      commonName: names.dnsNames[1] ?? 'VClerk',
      ...names,
      notBefore: new Date(now.getTime() - 3_600_000),
      notAfter: new Date(now.getTime() + SELF_SIGNED_DAYS * 86_400_000),
    });
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Key first and never readable by others; written to temporary names, then renamed into place.
    fs.writeFileSync(`${keyFile}.tmp`, made.keyPem, { mode: 0o600 });
    fs.writeFileSync(`${certFile}.tmp`, made.certPem, { mode: 0o644 });
    fs.renameSync(`${keyFile}.tmp`, keyFile);
    fs.renameSync(`${certFile}.tmp`, certFile);
    logger.info({ certFile, reason, ...names }, 'made a self-signed TLS certificate');
  }
  const setup = load('self-signed', certFile, keyFile);
  logger.warn(
    { certFile: setup.certFile, fingerprint: setup.fingerprint, notAfter: setup.notAfter.toISOString() },
    `HTTPS with a self-signed certificate: browsers will warn until it is trusted. Check that the SHA-256 fingerprint they show is ${setup.fingerprint}; for production, use the organisation's certificate (VCLERK_TLS=files) or a reverse proxy`,
  );
  return setup;
}

/**
 * The cipher policy, Mozilla's "intermediate" profile without the DHE
 * suites: TLS 1.2 only with ECDHE (forward secrecy) and AEAD ciphers
 * (AES-GCM, ChaCha20-Poly1305), for ECDSA and RSA certificates alike; TLS
 * 1.3 with its three standard suites. No CBC suite (LUCKY13), no static RSA
 * key exchange, nothing below TLS 1.2. The server's order wins.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const TLS_POLICY = { minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS, honorCipherOrder: true } as const satisfies tls.SecureContextOptions & tls.TlsOptions;

/** The HTTP or HTTPS server for the app. */
export function createServer(setup: TlsSetup, app: RequestListener): http.Server {
  if (setup.mode === 'off') return http.createServer(app);
  // https.Server has the http.Server interface the shutdown and socket.io use.
  return https.createServer({ cert: setup.cert, key: setup.key, ...TLS_POLICY }, app) as unknown as http.Server;
}

export function scheme(setup: TlsSetup): 'http' | 'https' {
  return setup.mode === 'off' ? 'http' : 'https';
}
