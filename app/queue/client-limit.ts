import type { Knex } from 'knex';
import { clientKey } from '../http/limiter';
import { waitingTicketHashes } from './store';

/** Clients (IP and organisation) kept at most; the oldest are forgotten first. */
const MAX_CLIENTS = 20_000;

/**
 * Open queue tickets per client IP and organisation, in memory (nothing
 * about the customer is stored for it). Before a new ticket, the client's
 * tickets that no longer wait are forgotten (one query), then the check and
 * the reservation happen in one synchronous step, so that concurrent
 * requests cannot all pass it.
 */
export class OpenTicketLimit {
  private readonly open = new Map<string, Set<string>>();

  constructor(private readonly knex: Knex, private readonly maxPerClient: number) {}

  /** Reserves a place for a new ticket; undefined when the client holds the maximum already. */
  async reserve(organisationId: string, ip: string | null | undefined): Promise<{ commit: (ticketHash: string) => void; cancel: () => void } | undefined> {
    const key = `${organisationId}|${clientKey(ip)}`;
    const known = [...(this.open.get(key) ?? [])].filter((h) => !h.startsWith('pending:'));
    if (known.length > 0) {
      const waiting = new Set<string>(await waitingTicketHashes(this.knex, known));
      const set = this.open.get(key);
      for (const h of known) if (!waiting.has(h)) set?.delete(h);
    }
    // From here on synchronous: check and reserve together.
    let set = this.open.get(key);
    if (!set) {
      if (this.open.size >= MAX_CLIENTS) this.open.delete(this.open.keys().next().value!);
      this.open.set(key, (set = new Set()));
    }
    if (set.size >= this.maxPerClient) return undefined;
    const placeholder = `pending:${Math.random()}`;
    set.add(placeholder);
    const s = set;
    return {
      commit: (ticketHash) => {
        s.delete(placeholder);
        s.add(ticketHash);
      },
      cancel: () => {
        s.delete(placeholder);
      },
    };
  }
}
