import type { Knex } from 'knex';
import type { Logger } from '../core/logger';
import { CallRefusal } from '../calls/refusal';
import { lockCallNode, setCallNode } from '../calls/store';
import { MISSED_HEARTBEATS } from './state';
import { livingNode, placeableNodes, type PlaceableNode } from './store';

/** Where a call's media room is: the node holding it, and whether that is this node. */
export interface CallPlace {
  node: { id: string; name: string; url: string };
  here: boolean;
  /** Placed by this request (first connection, or its node was gone): the node it was on before, if any. */
  moved?: { from: string | null };
}

/**
 * Places calls on the nodes sharing the database (issue 19). The first
 * connection to a call puts its media room on the least loaded living node
 * that takes calls (open calls ÷ capacity; not draining, not gone, not
 * full), recorded as `calls.node_id`. Later connections find it there for
 * as long as that node is alive, draining or not (a drained node keeps its
 * calls). When it is gone (no renewal for three heartbeats) the call is
 * placed again, the same way, by whichever node the next connection
 * reaches. The call's row is locked meanwhile, so two participants
 * connecting through two nodes at once agree on one.
 */
export class CallPlacement {
  constructor(
    private readonly knex: Knex,
    /** This node's registry id (the registry's row; undefined until registered). */
    private readonly selfId: () => string | undefined,
    private readonly logger: Logger,
  ) {}

  async place(callId: string): Promise<CallPlace> {
    const self = this.selfId();
    const place = await this.knex.transaction(async (trx) => {
      const call = await lockCallNode(trx, callId);
      if (!call) throw new CallRefusal('call_not_found');
      if (call.node_id) {
        const holder = await livingNode(trx, call.node_id, MISSED_HEARTBEATS);
        if (holder) return { node: holder };
      }
      const chosen = choose(await placeableNodes(trx, MISSED_HEARTBEATS));
      if (!chosen) throw new CallRefusal('no_node_available');
      await setCallNode(trx, callId, chosen.id);
      return { node: chosen, moved: { from: call.node_id } };
    });
    const node = { id: place.node.id, name: place.node.name, url: place.node.url };
    if (place.moved) this.logger.info({ callId, node: node.name, from: place.moved.from }, place.moved.from ? 'call placed again: its node is gone' : 'call placed');
    return { node, here: node.id === self, ...(place.moved ? { moved: place.moved } : {}) };
  }
}

/** The least loaded node with room (they come least loaded first). */
function choose(nodes: PlaceableNode[]): PlaceableNode | undefined {
  return nodes.find((n) => n.open < n.capacity);
}
