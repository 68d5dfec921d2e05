import crypto from 'node:crypto';

/**
 * Small secrets the appliance must use again (an LDAP service account's
 * password, an OIDC client secret) sealed for the database: AES-256-GCM
 * under a key derived (HKDF-SHA256) from the session secret for one
 * purpose, with the purpose and the row's id as additional data, so a
 * sealed value copied to another row or purpose does not open. The session
 * secret is in every backup; changing it means entering these secrets again.
 * Format: `v1.` + base64url(12-byte nonce | ciphertext | 16-byte tag).
 */
export class SealedSecretError extends Error {
  constructor() {
    super('a sealed secret could not be opened (changed, or sealed under another session secret)');
    this.name = 'SealedSecretError';
  }
}

export interface Sealer {
  seal(plaintext: string, bindTo: string): string;
  open(sealed: string, bindTo: string): string;
}

export function sealerFor(sessionSecret: string, purpose: string): Sealer {
  const key = Buffer.from(crypto.hkdfSync('sha256', sessionSecret, 'vclerk sealed secrets', purpose, 32));
  const aad = (bindTo: string) => Buffer.from(`${purpose}\n${bindTo}`);
  return {
    seal(plaintext, bindTo) {
      const nonce = crypto.randomBytes(12);
      const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(aad(bindTo));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `v1.${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url')}`;
    },
    open(sealed, bindTo) {
      if (!sealed.startsWith('v1.')) throw new SealedSecretError();
      const bytes = Buffer.from(sealed.slice(3), 'base64url');
      if (bytes.length < 28) throw new SealedSecretError();
      try {
        const decipher = crypto.createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12));
        decipher.setAAD(aad(bindTo));
        decipher.setAuthTag(bytes.subarray(bytes.length - 16));
        return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString('utf8');
      } catch {
        throw new SealedSecretError();
      }
    },
  };
}
