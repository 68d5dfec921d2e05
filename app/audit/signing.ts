import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The appliance's Ed25519 signing key, which signs audit-export manifests.
 * The private key is generated once and kept in
 * <dataDir>/appliance-signing-key.pem (0600), like session.secret; the
 * public key is shown to compliance staff and printed by
 * `vclerk audit public-key`, so an officer can obtain it independently of
 * any export. No database code here: the offline verifier uses this file.
 */
export const KEY_FILE = 'appliance-signing-key.pem';

export interface PublicKeyInfo {
  algorithm: 'ed25519';
  /** The first 16 hex digits of the fingerprint: names the key in URLs and manifests. */
  key_id: string;
  /** `sha256:` and the SHA-256 of the public key's DER (SubjectPublicKeyInfo), in hex. */
  fingerprint: string;
  pem: string;
}

export interface ApplianceKey {
  privateKey: crypto.KeyObject;
  publicKey: crypto.KeyObject;
  info: PublicKeyInfo;
}

export function keyFile(dataDir: string): string {
  return path.resolve(dataDir, KEY_FILE);
}

/** Fingerprint and PEM of an Ed25519 public key; throws for any other kind of key. */
export function publicKeyInfo(publicKey: crypto.KeyObject): PublicKeyInfo {
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 key');
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const hex = crypto.createHash('sha256').update(der).digest('hex');
  return { algorithm: 'ed25519', key_id: hex.slice(0, 16), fingerprint: `sha256:${hex}`, pem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** Reads a public key from PEM text (a public key, or a private key whose public half is taken). */
export function parsePublicKey(pem: string): crypto.KeyObject {
  const key = /PRIVATE KEY/.test(pem) ? crypto.createPublicKey(crypto.createPrivateKey(pem)) : crypto.createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 key');
  return key;
}

function fromPrivatePem(pem: string): ApplianceKey {
  const privateKey = crypto.createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${KEY_FILE} does not hold an Ed25519 key`);
  const publicKey = crypto.createPublicKey(privateKey);
  return { privateKey, publicKey, info: publicKeyInfo(publicKey) };
}

const cache = new Map<string, ApplianceKey>();

/** The key when it exists, else null; never writes. */
export function loadApplianceKey(dataDir: string): ApplianceKey | null {
  const file = keyFile(dataDir);
  const cached = cache.get(file);
  if (cached) return cached;
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const key = fromPrivatePem(pem);
  cache.set(file, key);
  return key;
}

/** The key, generated and stored (0600) when it does not exist yet. Two processes racing both end with the same key. */
export function ensureApplianceKey(dataDir: string): ApplianceKey {
  const existing = loadApplianceKey(dataDir);
  if (existing) return existing;
  const file = keyFile(dataDir);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  try {
    fs.writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return loadApplianceKey(dataDir)!;
}
