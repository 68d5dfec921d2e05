import type { Knex } from 'knex';
import { z } from 'zod';
import { actorOf, type Caller } from '../access/caller';
import { randomToken, sha256 } from '../security/tokens';
import { SYSTEM } from '../audit/actions';
import { CallService } from '../calls/service';
import { ConflictError, NotFoundError } from '../core/errors';
import { QueueSettingsStore } from './settings';
import { availabilityOf, countAvailableClerks, routableClerk, setAvailability } from '../staff/store';
import { autoRoutedCallId, countAhead, countWaiting, entryByTicketHash, expireEntries, insertEntry, leaveEntry, lockNextEntry, markAccepted, recentWaits, touchEntry, waitingEntries } from './store';

export type Availability = 'available' | 'busy' | 'away';
export const availabilitySchema = z.object({ availability: z.enum(['available', 'busy', 'away'], 'invalid') });

/** A waiting page that has not asked for its position this long is treated as gone. */
export const QUEUE_SILENCE_MS = 60_000;

export type TicketStatus =
  | { status: 'waiting'; position: number; estimatedWaitSeconds: number }
  | { status: 'accepted'; joinPath: string }
  | { status: 'left' | 'expired' };

export interface QueueEntry {
  id: string;
  label: string;
  waitingSince: Date;
}

function label(id: string): string {
  return `Customer ${id.replace(/-/g, '').slice(0, 4).toUpperCase()}`;
}

/**
 * The waiting queue of an organisation. Customers hold a ticket (a random
 * token, stored as a hash); clerks see the queue and accept the next or a
 * chosen customer, which creates a call whose customer token is the ticket.
 */
export class QueueService {
  constructor(private readonly knex: Knex) {}

  async availableClerks(organisationId: string): Promise<number> {
    return countAvailableClerks(this.knex, organisationId);
  }

  /** Customers waiting in the organisation's queue (silent ones expired first). */
  async waiting(organisationId: string): Promise<number> {
    await this.expireSilent(organisationId);
    return countWaiting(this.knex, { organisationId });
  }

  /** Enters the queue; the ticket is returned once. */
  /** `channel`: the queue's own page, or the organisation's website widget (Insights counts it). */
  async enter(organisationId: string, channel: 'queue' | 'widget' = 'queue'): Promise<{ ticket: string }> {
    const ticket = randomToken();
    await this.expireSilent(organisationId);
    await insertEntry(this.knex, organisationId, sha256(ticket), channel);
    return { ticket };
  }

  private async entryByTicket(ticket: unknown) {
    if (typeof ticket !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(ticket)) return undefined;
    return entryByTicketHash(this.knex, sha256(ticket));
  }

  /** Where a ticket stands; asking also keeps the entry alive. */
  async status(ticket: unknown): Promise<TicketStatus | undefined> {
    const entry = await this.entryByTicket(ticket);
    if (!entry) return undefined;
    if (entry.status === 'accepted') return { status: 'accepted', joinPath: `/join/${ticket as string}` };
    if (entry.status !== 'waiting') return { status: entry.status };
    await touchEntry(this.knex, entry.id);
    if ((await new QueueSettingsStore(this.knex).get(entry.organisation_id)).autoRouting && (await this.autoRoute(entry.organisation_id))) {
      return this.status(ticket);
    }
    await this.expireSilent(entry.organisation_id);
    const position = (await countAhead(this.knex, entry.organisation_id, entry.created_at)) + 1;
    return { status: 'waiting', position, estimatedWaitSeconds: await this.estimate(entry.organisation_id, position) };
  }

  /** Average wait of the last accepted customers, times the position, shared among available clerks. */
  private async estimate(organisationId: string, position: number): Promise<number> {
    const recent = await recentWaits(this.knex, organisationId);
    const average = recent.length ? recent.reduce((sum, waited) => sum + waited, 0) / recent.length : 120;
    const clerks = Math.max(1, await this.availableClerks(organisationId));
    return Math.round((average * position) / clerks);
  }

  async leave(ticket: unknown): Promise<void> {
    const entry = await this.entryByTicket(ticket);
    if (entry?.status === 'waiting') await leaveEntry(this.knex, entry.id);
  }

  /** Entries not seen for a minute leave the queue (the customer closed the page). */
  async expireSilent(organisationId: string): Promise<void> {
    await expireEntries(this.knex, organisationId, new Date(Date.now() - QUEUE_SILENCE_MS));
  }

  /** The live queue of the caller's organisation, oldest first. */
  async list(caller: Caller): Promise<QueueEntry[]> {
    await this.expireSilent(caller.user.organisationId);
    const rows = await waitingEntries(this.knex, caller.user.organisationId);
    return rows.map((r) => ({ id: r.id, label: label(r.id), waitingSince: r.created_at }));
  }

  /**
   * The caller (a clerk) takes a customer: the chosen entry, or the one
   * waiting longest. Creates the call with the ticket as its customer token.
   */
  async accept(caller: Caller, entryId: string | undefined, linkHours: number): Promise<{ callId: string }> {
    if (entryId !== undefined && !z.uuid().safeParse(entryId).success) throw new NotFoundError();
    return this.knex.transaction(async (trx) => {
      const entry = await lockNextEntry(trx, caller.user.organisationId, new Date(Date.now() - QUEUE_SILENCE_MS), entryId);
      if (!entry) throw new ConflictError(entryId ? 'queue_entry_gone' : 'queue_empty');
      const call = await new CallService(this.knex).startFromQueue(
        trx,
        { organisationId: caller.user.organisationId, clerkId: caller.user.id, actor: actorOf(caller.user), ip: caller.ip, userAgent: caller.userAgent },
        entry.ticket_hash,
        linkHours,
        entry.channel,
        { from_queue: true, chosen: entryId !== undefined },
      );
      await markAccepted(trx, entry.id, call.id, caller.user.id, false);
      return { callId: call.id };
    });
  }

  /**
   * Automatic routing (only where the organisation opted in): the customer
   * waiting longest goes to an available clerk who has no call in progress.
   * Returns true when someone was routed.
   */
  async autoRoute(organisationId: string): Promise<boolean> {
    const clerk = await routableClerk(this.knex, organisationId);
    if (!clerk) return false;
    return this.knex.transaction(async (trx) => {
      const entry = await lockNextEntry(trx, organisationId, new Date(Date.now() - QUEUE_SILENCE_MS));
      if (!entry) return false;
      const call = await new CallService(this.knex).startFromQueue(
        trx,
        { organisationId, clerkId: clerk.id, actor: SYSTEM, ip: null, userAgent: null },
        entry.ticket_hash,
        1,
        entry.channel,
        { from_queue: true, auto_routed: true, clerk_id: clerk.id },
      );
      await markAccepted(trx, entry.id, call.id, clerk.id, true);
      return true;
    });
  }

  /** A call automatic routing gave this clerk in the last two minutes, for the dashboard to open. */
  async assignedCall(caller: Caller): Promise<string | undefined> {
    return autoRoutedCallId(this.knex, caller.user.id, new Date(Date.now() - 120_000));
  }

  async setAvailability(caller: Caller, availability: Availability): Promise<void> {
    await setAvailability(this.knex, caller.user.organisationId, caller.user.id, availability);
  }

  async availability(caller: Caller): Promise<Availability> {
    return (await availabilityOf(this.knex, caller.user.id)) ?? 'away';
  }
}
