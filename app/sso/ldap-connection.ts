import net from 'node:net';
import tls from 'node:tls';
import { Client, InvalidCredentialsError, ResultCodeError } from 'ldapts';
import type { DirectoryRefusal } from './identity';
import type { LdapSettings } from './ldap-settings';

/**
 * One conversation with the directory: opens connections (StartTLS when
 * set, the server verified against the organisation's CA or the system's),
 * knows which step it is in, turns any failure into a stable refusal code
 * with a short detail that never contains a password, and closes every
 * connection it opened. Every step is bounded by `timeoutMs` (TCP connect,
 * TLS handshake, each request) and the whole by a few times that.
 */

export type LdapPhase = 'connect' | 'starttls' | 'service_bind' | 'base_dn' | 'user_search' | 'user_bind' | 'groups' | 'lookup';

/** A failure already turned into a refusal (thrown by steps that decide one themselves). */
export class LdapRefusal extends Error {
  constructor(
    readonly reason: DirectoryRefusal,
    readonly detail: string,
  ) {
    super(reason);
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EADDRNOTAVAIL']);
const NETWORK_MESSAGES = /Connection timeout|Operation timed out|Connection closed before|Socket error|Socket connection not established|socket hang up/i;
const TLS_CODES = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|HOSTNAME|ALTNAME|ERR_OSSL/;
/** Result codes that mean the directory is there but cannot answer now: busy (51), unavailable (52), time limit (3). */
const TRANSIENT_RESULTS = new Set([3, 51, 52]);
/** At the user's own bind: invalid credentials (49), inappropriate authentication (48), unwilling to perform (53). */
const USER_BIND_REFUSALS = new Set([48, 49, 53]);

const MAX_DETAIL = 300;

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export class LdapRun {
  private phase: LdapPhase = 'connect';
  private readonly clients = new Set<Client>();
  private closed = false;
  private readonly host: string;
  private readonly tlsOptions: tls.ConnectionOptions;

  /** `secrets`: values to scrub from any detail (the service password always). */
  constructor(
    readonly settings: LdapSettings,
    private readonly secrets: string[] = [],
  ) {
    this.host = new URL(settings.url).hostname.replace(/^\[|\]$/g, '');
    this.tlsOptions = {
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(settings.caPem ? { ca: [settings.caPem] } : {}),
      ...(net.isIP(this.host) ? {} : { servername: this.host }),
    };
  }

  step(phase: LdapPhase): void {
    this.phase = phase;
  }

  get currentPhase(): LdapPhase {
    return this.phase;
  }

  /** A new connection, upgraded with StartTLS when set (ldaps:// connects with TLS at the first request). */
  async connect(): Promise<Client> {
    if (this.closed) throw new LdapRefusal('directory_unavailable', `${this.phase}: given up (deadline)`);
    const { timeoutMs } = this.settings;
    const ldaps = this.settings.url.toLowerCase().startsWith('ldaps:');
    const client = new Client({
      url: this.settings.url,
      timeout: timeoutMs,
      connectTimeout: timeoutMs,
      // Only for ldaps://: ldapts connects with TLS from the start whenever tlsOptions are given.
      ...(ldaps ? { tlsOptions: { ...this.tlsOptions } } : {}),
      createSecureConnection: boundedTlsConnect(timeoutMs),
    });
    this.clients.add(client);
    if (this.settings.startTls) {
      const phase = this.phase;
      this.step('starttls');
      await client.startTLS({ ...this.tlsOptions, host: this.host });
      this.step(phase);
    }
    return client;
  }

  /** A connection bound as the service account. */
  async serviceClient(): Promise<Client> {
    this.step('connect');
    const client = await this.connect();
    this.step('service_bind');
    await client.bind(this.settings.bindDn, this.settings.bindPassword);
    return client;
  }

  async close(client: Client): Promise<void> {
    this.clients.delete(client);
    await client.unbind().catch(() => undefined);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.clients].map((client) => this.close(client)));
  }

  /**
   * Runs `work`, closing every connection afterwards; a failure becomes a
   * refusal. The whole is bounded by four times the step timeout (each
   * step is bounded on its own already; this catches anything that is not).
   */
  async guard<T>(work: () => Promise<T>): Promise<T | LdapRefusal> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<LdapRefusal>((resolve) => {
      timer = setTimeout(() => resolve(new LdapRefusal('directory_unavailable', `${this.phase}: no answer within ${4 * this.settings.timeoutMs} ms`)), 4 * this.settings.timeoutMs);
    });
    const attempt = work().catch((err: unknown) => this.refusalOf(err));
    try {
      return await Promise.race([attempt, deadline]);
    } finally {
      clearTimeout(timer);
      this.closed = true;
      await this.closeAll();
    }
  }

  /** The stable code for a failure in the current step, with a detail for the log and audit trail. */
  refusalOf(err: unknown): LdapRefusal {
    if (err instanceof LdapRefusal) return err;
    return new LdapRefusal(this.classify(err), this.describe(err));
  }

  private classify(err: unknown): DirectoryRefusal {
    const code = errorCode(err);
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof ResultCodeError) {
      if (this.phase === 'user_bind') return USER_BIND_REFUSALS.has(err.code) ? 'invalid_credentials' : TRANSIENT_RESULTS.has(err.code) ? 'directory_unavailable' : 'misconfigured';
      if (this.phase === 'starttls') return 'tls_failed';
      if (err instanceof InvalidCredentialsError) return 'misconfigured';
      return TRANSIENT_RESULTS.has(err.code) ? 'directory_unavailable' : 'misconfigured';
    }
    if (code && TLS_CODES.test(code)) return 'tls_failed';
    if ((code && NETWORK_CODES.has(code)) || NETWORK_MESSAGES.test(message)) {
      // A TLS peer that hangs up during the handshake (e.g. ldaps:// to a plain port) is a TLS problem.
      if (code === 'ECONNRESET' && /secure TLS connection/i.test(message)) return 'tls_failed';
      return 'directory_unavailable';
    }
    if (this.phase === 'starttls' || (this.settings.url.toLowerCase().startsWith('ldaps:') && /tls|ssl|certificate|handshake/i.test(message))) return 'tls_failed';
    return 'directory_unavailable';
  }

  private describe(err: unknown): string {
    const name = err instanceof Error ? err.constructor.name : 'Error';
    const code = err instanceof ResultCodeError ? String(err.code) : errorCode(err);
    const message = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
    return this.scrub(`${this.phase}: ${name}${code ? ` (${code})` : ''}: ${message}`).slice(0, MAX_DETAIL);
  }

  /** Replaces any secret (the service password, the typed password) that might appear in a text. */
  scrub(text: string): string {
    let result = text;
    for (const secret of [this.settings.bindPassword, ...this.secrets]) {
      if (secret.length >= 4) result = result.split(secret).join('***');
    }
    return result;
  }
}

/** tls.connect with a bound on the handshake (ldapts bounds the TCP connect and each request, not the StartTLS handshake). */
function boundedTlsConnect(timeoutMs: number): typeof tls.connect {
  return ((...args: Parameters<typeof tls.connect>) => {
    const socket = (tls.connect as (...a: unknown[]) => tls.TLSSocket)(...args);
    const timer = setTimeout(() => {
      const err = Object.assign(new Error(`TLS handshake: no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
      socket.destroy(err);
    }, timeoutMs);
    socket.once('secureConnect', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
    return socket;
  }) as typeof tls.connect;
}
