import { EventEmitter } from 'node:events';
import type { Knex } from 'knex';
import { NotifyBus } from '../db/notify-bus';

export interface CallEventMap {
  /** A call's customer link was revoked: its connected customer must go at once. */
  linkRevoked: [callId: string];
}

type CallEvent = keyof CallEventMap;

/** Without a bus (tests, tools): the one process's own notifications. */
const local = new EventEmitter();
// Every hub in the process listens (tests start several); not a leak.
local.setMaxListeners(0);

/**
 * Notifications from the call service to the signalling hubs: the service
 * says what changed, each hub acts on its live connections. When a
 * notify bus runs on the node's pool (app/db/notify-bus.ts, started by the
 * appliance), they go through PostgreSQL, so the hub of every node sharing
 * the database hears them, this node's included, once; given a
 * transaction, they go out when it commits. Without a bus they stay in
 * this process (after the transaction, if one is given).
 */
export const callEvents = {
  async emit<E extends CallEvent>(knex: Knex, event: E, args: CallEventMap[E], trx?: Knex.Transaction): Promise<void> {
    const bus = NotifyBus.of(knex);
    if (bus) return bus.publish(event, args, trx);
    if (trx) void trx.executionPromise.then(() => local.emit(event, ...args), () => undefined);
    else local.emit(event, ...args);
  },

  /** Listens on the pool's bus when one runs (start it first), else in this process; returns how to stop. */
  on<E extends CallEvent>(knex: Knex, event: E, listener: (...args: CallEventMap[E]) => void): () => void {
    const bus = NotifyBus.of(knex);
    if (bus) return bus.subscribe(event, (data) => listener(...(data as CallEventMap[E])));
    const handler = (...args: unknown[]) => listener(...(args as CallEventMap[E]));
    local.on(event, handler);
    return () => void local.off(event, handler);
  },
};
