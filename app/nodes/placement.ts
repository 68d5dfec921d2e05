import type { IncomingMessage } from 'node:http';
import type { Knex } from 'knex';
import type { Logger } from '../core/logger';
import { CallRefusal } from '../calls/refusal';
import { lockCallNode, setCallNode } from '../calls/store';
import { MISSED_HEARTBEATS } from './state';
import { namedNodeUnreachable } from './signal-forward';
import { livingNode, placeableNodes, type PlaceableNode } from './store';

/** Where a call's media room is: the node holding it, and whether that is this node. */
export interface CallPlace {
  node: { id: string; name: string; url: string };
  here: boolean;
  /** Placed by this request (first connection, or its node was gone): the node it was on before, if any. */
  moved?: { from: string | null };
}

/** How often a connection held for an unreachable holder looks again. */
const HOLD_POLL_MS = 250;

export interface CallPlacementOptions {
  /** This node's registry id (the registry's row; undefined until registered). */
  selfId: () => string | undefined;
  logger: Logger;
  /**
   * Takes back the calls and recordings of the nodes that are gone (the
   * failover sweep, app/nodes/failover.ts): run before a call of a gone
   * node is placed again, so that it is interrupted (audited, its recording
   * closed as partial) however the next connection beats the sweep. False
   * when this node may not judge other nodes gone now.
   */
  takeBack: () => Promise<boolean>;
  /** How long a connection whose named holder could not be reached waits for it to be known gone (ms). */
  holdMs: number;
}

/**
 * Places calls on the nodes sharing the database (issue 19). The first
 * connection to a call puts its media room on the least loaded living node
 * that takes calls (open calls ÷ capacity; not draining, not gone, not
 * full), recorded as `calls.node_id`. Later connections find it there for
 * as long as that node is alive, draining or not (a drained node keeps its
 * calls). When it is gone (no renewal for three heartbeats) its calls and
 * recordings are taken back, and the call is placed again, the same way,
 * by whichever node the next connection reaches. The call's row is locked
 * meanwhile, so two participants connecting through two nodes at once
 * agree on one.
 */
export class CallPlacement {
  constructor(
    private readonly knex: Knex,
    private readonly options: CallPlacementOptions,
  ) {}

  /**
   * Where the call is, placing it if need be. `request`: the connection's
   * first HTTP request. One that this node serves because the node it names
   * could not be reached (app/nodes/signal-forward.ts, namedNodeUnreachable)
   * and that names the call's holder is held (up to `holdMs`) until the
   * holder is known gone and the call is placed again: the holder died, most
   * likely, and is not yet known gone; the participants are back as soon as
   * the call has a living node, not at their next try.
   */
  async place(callId: string, request?: IncomingMessage): Promise<CallPlace> {
    const named = request && namedNodeUnreachable(request) ? namedNode(request) : undefined;
    const deadline = Date.now() + this.options.holdMs;
    for (;;) {
      const place = await this.placeNow(callId).catch((err: unknown) => {
        // A held connection waits for the take-back too.
        if (err instanceof NotTakenBack && named !== undefined && Date.now() < deadline) return undefined;
        throw err;
      });
      if (place && (place.here || named === undefined || place.node.name !== named || Date.now() >= deadline)) return place;
      await new Promise((resolve) => setTimeout(resolve, HOLD_POLL_MS));
    }
  }

  private async placeNow(callId: string): Promise<CallPlace> {
    let place = await this.lockAndPlace(callId);
    if (place === 'holder_gone' && (await this.options.takeBack())) place = await this.lockAndPlace(callId);
    // Not taken back: this node may not judge now (its own renewals were failing), or another node just placed it.
    if (place === 'holder_gone') throw new NotTakenBack();
    const node = { id: place.node.id, name: place.node.name, url: place.node.url };
    if (place.moved) this.options.logger.info({ callId, node: node.name, from: place.moved.from }, place.moved.from ? 'call placed again: its node is gone' : 'call placed');
    return { node, here: node.id === this.options.selfId(), ...(place.moved ? { moved: place.moved } : {}) };
  }

  /** Under the call's row lock: its living holder, or a new one; `holder_gone` when an active call's holder is gone and not yet taken back. */
  private lockAndPlace(callId: string): Promise<{ node: PlaceableNode; moved?: { from: string | null } } | 'holder_gone'> {
    return this.knex.transaction(async (trx) => {
      const call = await lockCallNode(trx, callId);
      if (!call) throw new CallRefusal('call_not_found');
      if (call.node_id) {
        const holder = await livingNode(trx, call.node_id, MISSED_HEARTBEATS);
        if (holder) return { node: holder };
        if (call.status === 'active') return 'holder_gone';
      }
      const chosen = choose(await placeableNodes(trx, MISSED_HEARTBEATS));
      if (!chosen) throw new CallRefusal('no_node_available');
      await setCallNode(trx, callId, chosen.id);
      return { node: chosen, moved: { from: call.node_id } };
    });
  }
}

/** The node a signalling request names (`/signal/?node=`). */
function namedNode(request: IncomingMessage): string | undefined {
  try {
    return new URL(request.url ?? '', 'http://node').searchParams.get('node') ?? undefined;
  } catch {
    return undefined;
  }
}

/** The call's node looks gone, and its calls are not taken back yet (answered `internal_error`: the participant tries again). */
class NotTakenBack extends Error {
  constructor() {
    super('the call\'s node looks gone, and its calls are not taken back yet');
  }
}

/** The least loaded node with room (they come least loaded first). */
function choose(nodes: PlaceableNode[]): PlaceableNode | undefined {
  return nodes.find((n) => n.open < n.capacity);
}
