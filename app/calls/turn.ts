import crypto from 'node:crypto';
import type { Config } from '../../config';
import type { IceServer } from './protocol';

/**
 * Time-limited TURN credentials by the TURN REST API scheme that coturn
 * implements (`use-auth-secret` with `static-auth-secret`): the username is
 * `<expiry as unix time>:<label>`, the password base64(HMAC-SHA1(secret,
 * username)). The TURN server recomputes the password from the shared
 * secret and refuses the username once its time has passed; VClerk keeps
 * no state.
 */
export function turnCredentials(secret: string, label: string, expiresAt: number): { username: string; credential: string } {
  const username = `${Math.floor(expiresAt)}:${label}`;
  const credential = crypto.createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

/** TURN half configured: the process exits as for a bad configuration. */
export class TurnIssuer {
  constructor(private readonly urls: readonly string[], private readonly secret: string, private readonly ttlSeconds: number) {}

  /** The issuer for the configuration, or null when TURN is not configured (config/rules.ts requires both settings or neither). */
  static fromConfig(config: Pick<Config, 'turnUrls' | 'turnSecret' | 'turnTtlSeconds'>): TurnIssuer | null {
    if (!config.turnUrls || !config.turnSecret) return null;
    return new TurnIssuer(config.turnUrls, config.turnSecret, config.turnTtlSeconds);
  }

  get urlList(): readonly string[] {
    return this.urls;
  }

  /**
   * ICE servers for one participant. The label is random: it names no
   * person or call in the TURN server's logs.
   */
  iceServers(now = Date.now()): IceServer[] {
    const label = crypto.randomBytes(9).toString('base64url');
    const { username, credential } = turnCredentials(this.secret, label, now / 1000 + this.ttlSeconds);
    return [{ urls: [...this.urls], username, credential }];
  }
}
