import type { Knex } from 'knex';
import type { Config } from '../../config';
import type { NodeScope } from '../calls/store';
import { CallService } from '../calls/service';
import type { Logger } from '../core/logger';
import type { JobQueue } from '../jobs/queue';
import { interruptLostRecordings } from '../recordings/finalise';
import { nodeNameOf } from './identity';
import { MISSED_HEARTBEATS } from './state';
import { lostNodeIds, ownOrLostNodeIds } from './store';

/**
 * What a starting node reconciles (calls left active, recordings left
 * running): its own (by name, from its last run), those of no node, and
 * those of nodes that are gone. A living node's calls are not touched.
 */
export async function startScope(knex: Knex, config: Pick<Config, 'nodeName'>): Promise<NodeScope> {
  return { nodeIds: await ownOrLostNodeIds(knex, nodeNameOf(config), MISSED_HEARTBEATS), unplaced: true };
}

/**
 * Every heartbeat, on every node: the calls and recordings of nodes that
 * are gone (kill -9, power off, cut off) are taken back. Their active calls
 * go back to waiting (`call.interrupted`, `node_lost`), so that the
 * participants' reconnection places the call on a living node with its
 * chat, cards and audit trail; their running recordings are stopped as
 * partial and queued for their final file (from the tracks in the shared
 * data directory). Each is done once however many nodes sweep at once.
 * A sweep that fails (the database out of reach) is logged and tried at
 * the next heartbeat. A node judges others gone only while its own
 * renewals have run without a failure for three heartbeats (`canJudge`):
 * after an outage of the database every node's renewals are late at once.
 */
export class FailoverSweep {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly options: { knex: Knex; jobs: JobQueue; logger: Logger; heartbeatSeconds: number; canJudge?: () => boolean }) {}

  /** Takes back what gone nodes left; `judged` false when this node may not judge now (NodeRegistry.steady) and nothing was done. */
  async sweep(): Promise<{ calls: number; recordings: number; judged: boolean }> {
    const { knex, jobs } = this.options;
    if (this.options.canJudge && !this.options.canJudge()) return { calls: 0, recordings: 0, judged: false };
    const lost = await lostNodeIds(knex, MISSED_HEARTBEATS);
    const calls = await new CallService(knex).interruptLost(lost);
    const recordings = await interruptLostRecordings(knex, jobs, lost);
    if (calls || recordings) this.options.logger.warn({ calls, recordings }, 'took back the calls and recordings of a node that is gone');
    return { calls, recordings, judged: true };
  }

  start(): void {
    const loop = () => {
      this.timer = setTimeout(() => {
        this.running = this.sweep()
          .catch((err) => this.options.logger.warn({ err }, 'the sweep for lost nodes failed'))
          .finally(() => {
            this.running = undefined;
            if (this.timer) loop();
          });
      }, this.options.heartbeatSeconds * 1000);
      this.timer.unref();
    };
    loop();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
