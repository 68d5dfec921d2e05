import type { Server } from 'node:http';
import type { Knex } from 'knex';
import type { Logger } from '../core/logger';
import type { JobQueue } from '../jobs/queue';
import type { TrustProxy } from '../net/addresses';
import { NodeDirectory } from './directory';
import { FailoverSweep } from './failover';
import { CallPlacement } from './placement';
import { forwardSignalling } from './signal-forward';
import { MISSED_HEARTBEATS } from './state';

export interface NodeClusterOptions {
  knex: Knex;
  jobs: JobQueue;
  logger: Logger;
  /** This node's name, its registry id (undefined until registered), and whether it may judge other nodes gone now (NodeRegistry.steady). */
  self: { name: string; id(): string | undefined; steady(): boolean };
  heartbeatSeconds: number;
  /** The secret every node shares (the session secret): signs a forwarded client's address. */
  secret: string;
  trustProxy?: TrustProxy;
}

/**
 * What makes this process one node among several on one database (issue
 * 19), beside its entry in the node registry: where calls are placed (for
 * the signalling hub), the living nodes' addresses, signalling passed on to
 * the node holding the call, and the calls and recordings of gone nodes
 * taken back. `placement` goes to the hub; `start(server)` once socket.io is
 * attached to the server; `stop()` when stopping.
 */
export class NodeCluster {
  readonly placement: CallPlacement;
  private readonly directory: NodeDirectory;
  private readonly failover: FailoverSweep;

  constructor(private readonly options: NodeClusterOptions) {
    const logger = options.logger.child({ component: 'nodes' });
    this.failover = new FailoverSweep({ knex: options.knex, jobs: options.jobs, logger, heartbeatSeconds: options.heartbeatSeconds, canJudge: options.self.steady });
    this.directory = new NodeDirectory(options.knex, logger);
    this.placement = new CallPlacement(options.knex, {
      selfId: options.self.id,
      logger,
      takeBack: async () => (await this.failover.sweep()).judged,
      // Long enough for a holder that died just after renewing to be known gone.
      holdMs: (MISSED_HEARTBEATS + 1) * options.heartbeatSeconds * 1000,
    });
  }

  async start(server: Server): Promise<void> {
    const { options, directory } = this;
    await directory.start(options.heartbeatSeconds);
    this.failover.start();
    forwardSignalling(server, { path: '/signal/', self: options.self.name, urlOf: (name) => directory.urlOf(name), secret: options.secret, trustProxy: options.trustProxy, logger: options.logger });
  }

  /** Reads the living nodes' addresses now (else every heartbeat). */
  refresh(): Promise<void> {
    return this.directory.refresh();
  }

  async stop(): Promise<void> {
    this.directory.stop();
    await this.failover.stop();
  }
}
