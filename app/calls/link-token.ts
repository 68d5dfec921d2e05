import crypto from 'node:crypto';
import { randomToken } from '../security/tokens';

/**
 * Customer link tokens the owning clerk can be shown again without the
 * token being stored. A call started by a clerk (or the API) gets a random
 * nonce (256 bits, stored in `calls.link_nonce`); its token is
 * base64url(HMAC-SHA256(key, "<call id>:<nonce>")), 256 bits as before, and
 * only its SHA-256 is stored (the lookup key). The key is derived (HKDF) from
 * the session secret, so it is configured, shared between instances and
 * backed up like that secret; the database alone cannot give a token back.
 * Changing the session secret leaves the links working (the hash is
 * unchanged) but they can no longer be shown again: `matches` tells.
 */
export class CallLinkTokens {
  private derived: Buffer | undefined;

  constructor(private readonly sessionSecret: string) {}

  /** Derived at the first use (a route table built without a secret, as some tests do, never needs it). */
  private get key(): Buffer {
    this.derived ??= Buffer.from(crypto.hkdfSync('sha256', this.sessionSecret, 'vclerk', 'call-link-token-v1', 32));
    return this.derived;
  }

  /** A new call's id, nonce and token. */
  issue(): { id: string; nonce: string; token: string } {
    const id = crypto.randomUUID();
    const nonce = randomToken();
    return { id, nonce, token: this.token(id, nonce) };
  }

  /** The token of a call with this id and nonce. */
  token(callId: string, nonce: string): string {
    return crypto.createHmac('sha256', this.key).update(`${callId}:${nonce}`).digest('base64url');
  }
}
