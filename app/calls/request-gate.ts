import type { Knex } from 'knex';

/** How long a connection counts as flooding after its last refusal for volume. */
export const FLOODING_MS = 10_000;

type Tier = Map<string, (() => void)[]>;

/**
 * The feature modules' requests of all connections of one hub (chat,
 * curation, notes, recording: each a database transaction) go through this
 * gate: at most `size` at once, so that they never hold the whole database
 * pool (sign-ins, pages and sessions keep the rest), and a queue of them
 * never forms in the pool, where it would be first come, first served.
 *
 * Here the waiting requests are served fairly instead: first those of calm
 * connections (none refused for volume in the last FLOODING_MS), then those
 * of flooding ones; within each, the calls take turns (one request of each
 * call with waiting requests, round and round). A call's request thus waits
 * behind at most one request of every other calm call, however many
 * connections flood and however valid their messages are.
 */
export class RequestGate {
  private free: number;
  private readonly calm: Tier = new Map();
  private readonly flooding: Tier = new Map();

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`a request gate needs at least one place, not ${size}`);
    this.free = size;
  }

  /** Waits for a place for a request of `callId`; resolves to its release (idempotent). */
  async enter(callId: string, flooding: boolean): Promise<() => void> {
    if (this.free > 0) this.free--;
    else {
      await new Promise<void>((resolve) => {
        const tier = flooding ? this.flooding : this.calm;
        const queue = tier.get(callId);
        if (queue) queue.push(resolve);
        else tier.set(callId, [resolve]);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.next();
      if (next) next();
      else this.free++;
    };
  }

  /** How many requests wait (for the status page and tests). */
  get waiting(): number {
    let n = 0;
    for (const tier of [this.calm, this.flooding]) for (const queue of tier.values()) n += queue.length;
    return n;
  }

  /** The first waiting call of the first non-empty tier gives its oldest request, then goes to the back of the round. */
  private next(): (() => void) | undefined {
    for (const tier of [this.calm, this.flooding]) {
      for (const [callId, queue] of tier) {
        const resolve = queue.shift()!;
        tier.delete(callId);
        if (queue.length > 0) tier.set(callId, queue);
        return resolve;
      }
    }
    return undefined;
  }
}

/** Half the database pool (at least one) for the hub's module requests. */
export function gateSizeFor(knex: Knex): number {
  const max = Number((knex.client as { config?: { pool?: { max?: number } } }).config?.pool?.max ?? 10);
  return Math.max(1, Math.floor(max / 2));
}
