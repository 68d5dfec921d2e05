import crypto from 'node:crypto';
import pg from 'pg';
import type { Knex } from 'knex';
import type { Logger } from '../core/logger';

/** The one channel every node listens on; a notification names its event. */
export const NOTIFY_CHANNEL = 'vclerk_events';
/** PostgreSQL refuses payloads from 8000 bytes on. */
export const NOTIFY_PAYLOAD_MAX = 7999;

/** A notification too large for PostgreSQL: send an id and let the receiver read the rest. */
export class NotifyPayloadTooLargeError extends Error {
  readonly code = 'notify_payload_too_large';
  constructor(readonly event: string, readonly bytes: number) {
    super(`notification ${event} is ${bytes} bytes; at most ${NOTIFY_PAYLOAD_MAX} fit`);
  }
}

export type NotifyHandler = (data: unknown, origin: string) => void;

export interface NotifyBusOptions {
  /** The node's pool: publishing goes through it; the listening connection uses its settings. */
  knex: Knex;
  logger: Logger;
  channel?: string;
  /** Backoff between reconnection attempts: doubled from min up to max (default 250 ms … 5 s). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/** The bus of each node's pool (see NotifyBus.of). */
const buses = new WeakMap<Knex, NotifyBus>();

/**
 * Notifications between the appliance nodes that share one database, over
 * PostgreSQL LISTEN/NOTIFY. One dedicated connection per bus (not one of
 * the pool's: a pooled connection is handed to other work) LISTENs on the
 * channel; `publish` runs `SELECT pg_notify(...)` through the pool or a
 * given transaction, so a notification sent inside a transaction goes out
 * only when it commits (and never when it rolls back).
 *
 * Delivery: every bus, the publisher's own included, delivers a
 * notification to its subscribers only when the database echoes it, so
 * each process hears each notification exactly once and in the database's
 * order; `origin` (the publishing bus's id) is only informational.
 *
 * Losses: when the listening connection is lost (database restarted, the
 * backend terminated), the bus logs it once and reconnects with backoff;
 * notifications sent while it is away are not delivered to it (PostgreSQL
 * queues them only for connected listeners). Subscribers must therefore
 * treat a notification as a prompt, with the database as the truth: the
 * signalling hub's sweep still finds a link revoked during such a gap.
 *
 * LISTEN and NOTIFY need no grants: the restricted app role uses them.
 */
export class NotifyBus {
  /** This bus's id, sent as `origin`. */
  readonly id = crypto.randomUUID();
  readonly channel: string;
  private readonly handlers = new Map<string, Set<NotifyHandler>>();
  private client: pg.Client | null = null;
  private closed = false;
  private lostSince: number | null = null;
  private retryMs: number;
  private retry: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | null = null;

  constructor(private readonly options: NotifyBusOptions) {
    this.channel = options.channel ?? NOTIFY_CHANNEL;
    this.retryMs = options.reconnectMinMs ?? 250;
  }

  /** The running bus of a node's pool, if one was started on it. */
  static of(knex: Knex): NotifyBus | undefined {
    return buses.get(knex);
  }

  /** Connects and listens; rejects when the first connection fails. The bus is then the pool's (NotifyBus.of). */
  async start(): Promise<void> {
    await this.connect();
    buses.set(this.options.knex, this);
  }

  /** Whether the listening connection is up (a lost one is being reconnected). */
  get listening(): boolean {
    return this.client !== null;
  }

  /** The listening connection's backend pid (tests terminate it), or null while away. */
  get backendPid(): number | null {
    return (this.client as unknown as { processID?: number } | null)?.processID ?? null;
  }

  /**
   * Sends `event` with its data (JSON) to every bus on the database, this
   * one included; inside `trx` it goes out when that commits. Refuses a
   * payload over PostgreSQL's limit (NotifyPayloadTooLargeError).
   */
  async publish(event: string, data: unknown, trx?: Knex | Knex.Transaction): Promise<void> {
    const payload = JSON.stringify({ event, data, origin: this.id });
    const bytes = Buffer.byteLength(payload);
    if (bytes > NOTIFY_PAYLOAD_MAX) throw new NotifyPayloadTooLargeError(event, bytes);
    await (trx ?? this.options.knex).raw('SELECT pg_notify(?, ?)', [this.channel, payload]);
  }

  /** Calls `handler` for each notification of `event`; returns how to stop. */
  subscribe(event: string, handler: NotifyHandler): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => void set.delete(handler);
  }

  /** Stops listening and closes the connection; publishing through the bus ends too. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    if (buses.get(this.options.knex) === this) buses.delete(this.options.knex);
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private connect(): Promise<void> {
    const settings = (this.options.knex.client as { connectionSettings: pg.ClientConfig }).connectionSettings;
    const client = new pg.Client({ ...settings, application_name: 'vclerk-notify', keepAlive: true, connectionTimeoutMillis: 10_000 });
    const attempt = (async () => {
      client.on('error', (err) => this.lost(client, err));
      client.on('end', () => this.lost(client));
      client.on('notification', (message) => {
        if (message.channel === this.channel) this.deliver(message.payload);
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${client.escapeIdentifier(this.channel)}`);
      } catch (err) {
        client.removeAllListeners('end');
        await client.end().catch(() => undefined);
        throw err;
      }
      if (this.closed) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      this.retryMs = this.options.reconnectMinMs ?? 250;
      if (this.lostSince !== null) {
        this.options.logger.info({ channel: this.channel, awayMs: Date.now() - this.lostSince }, 'notify bus: listening again (notifications sent meanwhile were not received)');
        this.lostSince = null;
      }
    })();
    this.connecting = attempt;
    return attempt.finally(() => {
      if (this.connecting === attempt) this.connecting = null;
    });
  }

  /** The listening connection failed or ended: log once, then reconnect with backoff. */
  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== client) return;
    this.client = null;
    client.removeAllListeners('notification');
    void client.end().catch(() => undefined);
    if (this.closed) return;
    if (this.lostSince === null) {
      this.lostSince = Date.now();
      this.options.logger.warn({ err, channel: this.channel }, 'notify bus: lost the listening connection; reconnecting');
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.options.reconnectMaxMs ?? 5000);
    this.retry = setTimeout(() => {
      this.connect().catch(() => this.scheduleReconnect());
    }, delay);
    this.retry.unref();
  }

  private deliver(payload: string | undefined): void {
    let message: { event?: unknown; data?: unknown; origin?: unknown };
    try {
      message = JSON.parse(payload ?? '') as typeof message;
    } catch {
      this.options.logger.warn({ channel: this.channel }, 'notify bus: a notification that is not JSON was ignored');
      return;
    }
    if (typeof message.event !== 'string') return;
    for (const handler of this.handlers.get(message.event) ?? []) {
      try {
        handler(message.data, typeof message.origin === 'string' ? message.origin : '');
      } catch (err) {
        this.options.logger.error({ err, event: message.event }, 'notify bus: a subscriber failed');
      }
    }
  }
}
