import crypto from 'node:crypto';
import type { Knex } from 'knex';
import pg from 'pg';
import type { Logger } from '../core/logger';
import { isDatabaseUnavailable } from '../db/unavailable';
import type { NodeRow } from '../db/tables';
import type { NodeIdentity } from './identity';
import { listNodes } from './service';
import { MISSED_HEARTBEATS, type NodeView } from './state';
import { holdNodeLock, markNodeStopped, renewNode, upsertNode } from './store';

/** This node's load as it reports it at each renewal. */
export interface NodeLoad {
  /** Calls with a media room in this process. */
  calls: number;
  /** Media workers alive. */
  workers: number;
}

export interface NodeRegistryOptions {
  knex: Knex;
  logger: Logger;
  identity: NodeIdentity;
  load: () => NodeLoad;
  version: string;
}

/**
 * This node's entry in the node registry (`nodes`). `register()` at start
 * takes the name's row (started and renewed now, not stopped); `start()`
 * renews it with the node's load every heartbeat, in a loop of its own
 * (a cron job's minute is too coarse, and the renewal must not wait behind
 * jobs) on a connection of its own (a node whose pool is busy with requests
 * must not look gone to the others), which also holds the node's liveness
 * lock (store.ts, holdNodeLock: a node whose process died is known gone
 * after one missed renewal); `stop()` ends the loop and marks the
 * row stopped. A renewal that
 * fails (the database briefly out of reach) is logged and tried again at
 * the next heartbeat: the database watchdog handles outages.
 */
export class NodeRegistry {
  /** This process's hold on the name: a new one at each start. */
  readonly runId = crypto.randomUUID();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private looping = false;
  private lost = false;
  private row: NodeRow | undefined;
  /** The renewals' own connection (holding the liveness lock), opened at the first renewal and again after it broke. */
  private session: pg.Client | undefined;
  /** Since when every renewal has succeeded (undefined after a failure): see `steady`. */
  private renewingSince: number | undefined;

  constructor(private readonly options: NodeRegistryOptions) {}

  get name(): string {
    return this.options.identity.name;
  }

  /** The row as this node last wrote it (draining is the operator's). */
  get self(): NodeRow | undefined {
    return this.row;
  }

  async register(): Promise<NodeRow> {
    const { identity, knex, version } = this.options;
    const load = this.options.load();
    this.row = await upsertNode(knex, { ...identity, ...load, version, runId: this.runId });
    this.lost = false;
    this.renewingSince = Date.now();
    await this.closeSession();
    await this.connection();
    this.options.logger.info({ node: identity.name, url: identity.url, mediaAddress: identity.mediaAddress, capacity: identity.capacity, draining: this.row.draining }, 'node registered');
    return this.row;
  }

  /** Renews every heartbeat until `stop()`; a renewal never overlaps the one before. */
  start(): void {
    if (this.looping) return;
    this.looping = true;
    this.schedule();
  }

  /** One renewal with the current load; never throws (a failure is logged). */
  async renew(): Promise<NodeRow | undefined> {
    const { knex, logger, identity } = this.options;
    try {
      const row = await renewNode(await this.connection(), identity.name, this.runId, this.options.load());
      if (!row) {
        if (!this.lost) logger.error({ node: identity.name }, 'another process has registered under this node name: give every node its own VCLERK_NODE_NAME');
        this.lost = true;
        return undefined;
      }
      this.lost = false;
      this.row = row;
      this.renewingSince ??= Date.now();
      return row;
    } catch (err) {
      logger.warn({ err, node: identity.name, databaseUnavailable: isDatabaseUnavailable(err) }, 'could not renew the node registration');
      this.renewingSince = undefined;
      await this.closeSession();
      return undefined;
    }
  }

  /**
   * Whether this node has renewed without a failure for three heartbeats:
   * only then may it judge other nodes gone. After an outage of the
   * database every node's renewals are late at once, and a node that is
   * back first must not take the calls of the others before they renew.
   */
  get steady(): boolean {
    return this.renewingSince !== undefined && Date.now() - this.renewingSince >= MISSED_HEARTBEATS * this.options.identity.heartbeatSeconds * 1000;
  }

  /** The renewals' connection, opened (holding the liveness lock) if need be. */
  private async connection(): Promise<pg.Client> {
    if (this.session) return this.session;
    const settings = (this.options.knex.client as { connectionSettings: pg.ClientConfig }).connectionSettings;
    const client = new pg.Client({ ...settings, application_name: 'vclerk-node-registry', keepAlive: true, connectionTimeoutMillis: 10_000 });
    client.on('error', () => {
      // Broken: the next renewal fails and opens a new one.
      if (this.session === client) this.session = undefined;
    });
    await client.connect();
    try {
      if (this.row && !(await holdNodeLock(client, this.row.id))) {
        this.options.logger.warn({ node: this.name }, 'another session holds this node\'s liveness lock: its death is known only after three missed heartbeats');
      }
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    this.session = client;
    return client;
  }

  private async closeSession(): Promise<void> {
    const client = this.session;
    this.session = undefined;
    await client?.end().catch(() => undefined);
  }

  /** Ends the renewals and marks this node stopped (a failure is logged: the node then turns gone). */
  async stop(): Promise<void> {
    this.looping = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    try {
      await markNodeStopped(this.options.knex, this.options.identity.name, this.runId);
      this.options.logger.info({ node: this.options.identity.name }, 'node marked stopped');
    } catch (err) {
      this.options.logger.warn({ err, node: this.options.identity.name }, 'could not mark the node stopped');
    } finally {
      await this.closeSession();
    }
  }

  /** Every node of the registry, with its state now. */
  list(): Promise<NodeView[]> {
    return listNodes(this.options.knex);
  }

  private schedule(): void {
    if (!this.looping) return;
    this.timer = setTimeout(() => {
      this.running = this.renew().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.options.identity.heartbeatSeconds * 1000);
    this.timer.unref();
  }
}
