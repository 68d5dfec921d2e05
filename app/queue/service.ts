import type { Knex } from 'knex';
import { z } from 'zod';
import { actorOf, type Caller } from '../auth/caller';
import { randomToken, sha256 } from '../auth/tokens';
import { SYSTEM } from '../audit/actions';
import { CallService } from '../calls/service';
import { ConflictError, NotFoundError } from '../errors';
import { QueueSettingsStore } from './settings';

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
    const [{ n }] = (await this.knex('users').where({ organisation_id: organisationId, role: 'clerk', status: 'active', availability: 'available' }).count({ n: '*' })) as [{ n: string }];
    return Number(n);
  }

  /** Enters the queue; the ticket is returned once. */
  async enter(organisationId: string): Promise<{ ticket: string }> {
    const ticket = randomToken();
    await this.expireSilent(organisationId);
    await this.knex('queue_entries').insert({ organisation_id: organisationId, ticket_hash: sha256(ticket) });
    return { ticket };
  }

  private async entryByTicket(ticket: unknown) {
    if (typeof ticket !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(ticket)) return undefined;
    return this.knex('queue_entries').where({ ticket_hash: sha256(ticket) }).first();
  }

  /** Where a ticket stands; asking also keeps the entry alive. */
  async status(ticket: unknown): Promise<TicketStatus | undefined> {
    const entry = await this.entryByTicket(ticket);
    if (!entry) return undefined;
    if (entry.status === 'accepted') return { status: 'accepted', joinPath: `/join/${ticket as string}` };
    if (entry.status !== 'waiting') return { status: entry.status };
    await this.knex('queue_entries').where({ id: entry.id }).update({ last_seen_at: this.knex.fn.now() });
    if ((await new QueueSettingsStore(this.knex).get(entry.organisation_id)).autoRouting && (await this.autoRoute(entry.organisation_id))) {
      return this.status(ticket);
    }
    await this.expireSilent(entry.organisation_id);
    const [{ ahead }] = (await this.knex('queue_entries')
      .where({ organisation_id: entry.organisation_id, status: 'waiting' })
      .where('created_at', '<', entry.created_at)
      .count({ ahead: '*' })) as [{ ahead: string }];
    const position = Number(ahead) + 1;
    return { status: 'waiting', position, estimatedWaitSeconds: await this.estimate(entry.organisation_id, position) };
  }

  /** Average wait of the last accepted customers, times the position, shared among available clerks. */
  private async estimate(organisationId: string, position: number): Promise<number> {
    const recent = await this.knex('queue_entries')
      .where({ organisation_id: organisationId, status: 'accepted' })
      .orderBy('accepted_at', 'desc')
      .limit(20)
      .select(this.knex.raw('extract(epoch from accepted_at - created_at) AS waited'));
    const average = recent.length ? recent.reduce((sum: number, r: { waited: string }) => sum + Number(r.waited), 0) / recent.length : 120;
    const clerks = Math.max(1, await this.availableClerks(organisationId));
    return Math.round((average * position) / clerks);
  }

  async leave(ticket: unknown): Promise<void> {
    const entry = await this.entryByTicket(ticket);
    if (entry?.status === 'waiting') await this.knex('queue_entries').where({ id: entry.id, status: 'waiting' }).update({ status: 'left', ended_at: this.knex.fn.now() });
  }

  /** Entries not seen for a minute leave the queue (the customer closed the page). */
  async expireSilent(organisationId: string): Promise<void> {
    await this.knex('queue_entries')
      .where({ organisation_id: organisationId, status: 'waiting' })
      .where('last_seen_at', '<', new Date(Date.now() - QUEUE_SILENCE_MS))
      .update({ status: 'expired', ended_at: this.knex.fn.now() });
  }

  /** The live queue of the caller's organisation, oldest first. */
  async list(caller: Caller): Promise<QueueEntry[]> {
    await this.expireSilent(caller.user.organisationId);
    const rows = await this.knex('queue_entries').where({ organisation_id: caller.user.organisationId, status: 'waiting' }).orderBy('created_at').select('id', 'created_at');
    return rows.map((r) => ({ id: r.id, label: label(r.id), waitingSince: r.created_at }));
  }

  /**
   * The caller (a clerk) takes a customer: the chosen entry, or the one
   * waiting longest. Creates the call with the ticket as its customer token.
   */
  async accept(caller: Caller, entryId: string | undefined, linkHours: number): Promise<{ callId: string }> {
    if (entryId !== undefined && !z.uuid().safeParse(entryId).success) throw new NotFoundError();
    return this.knex.transaction(async (trx) => {
      const query = trx('queue_entries').where({ organisation_id: caller.user.organisationId, status: 'waiting' }).where('last_seen_at', '>=', new Date(Date.now() - QUEUE_SILENCE_MS));
      if (entryId) query.where({ id: entryId });
      const entry = await query.orderBy('created_at').forUpdate().skipLocked().first();
      if (!entry) throw new ConflictError(entryId ? 'queue_entry_gone' : 'queue_empty');
      const call = await new CallService(this.knex).startFromQueue(
        trx,
        { organisationId: caller.user.organisationId, clerkId: caller.user.id, actor: actorOf(caller.user), ip: caller.ip, userAgent: caller.userAgent },
        entry.ticket_hash,
        linkHours,
        { from_queue: true, chosen: entryId !== undefined },
      );
      await trx('queue_entries').where({ id: entry.id }).update({ status: 'accepted', call_id: call.id, accepted_by: caller.user.id, accepted_at: trx.fn.now() });
      return { callId: call.id as string };
    });
  }

  /**
   * Automatic routing (only where the organisation opted in): the customer
   * waiting longest goes to an available clerk who has no call in progress.
   * Returns true when someone was routed.
   */
  async autoRoute(organisationId: string): Promise<boolean> {
    const clerk = await this.knex('users')
      .where({ organisation_id: organisationId, role: 'clerk', status: 'active', availability: 'available' })
      .whereNotExists((q) => q.select(1).from('calls').whereRaw('calls.clerk_id = users.id').where('calls.status', 'active'))
      .whereNotExists((q) => q.select(1).from('queue_entries').whereRaw('queue_entries.accepted_by = users.id').where('queue_entries.auto_routed', true).where('queue_entries.accepted_at', '>', new Date(Date.now() - 120_000)))
      .orderByRaw('random()')
      .first('id', 'email', 'name');
    if (!clerk) return false;
    return this.knex.transaction(async (trx) => {
      const entry = await trx('queue_entries').where({ organisation_id: organisationId, status: 'waiting' }).where('last_seen_at', '>=', new Date(Date.now() - QUEUE_SILENCE_MS)).orderBy('created_at').forUpdate().skipLocked().first();
      if (!entry) return false;
      const call = await new CallService(this.knex).startFromQueue(
        trx,
        { organisationId, clerkId: clerk.id, actor: SYSTEM, ip: null, userAgent: null },
        entry.ticket_hash,
        1,
        { from_queue: true, auto_routed: true, clerk_id: clerk.id },
      );
      await trx('queue_entries').where({ id: entry.id }).update({ status: 'accepted', call_id: call.id, accepted_by: clerk.id, accepted_at: trx.fn.now(), auto_routed: true });
      return true;
    });
  }

  /** A call automatic routing gave this clerk in the last two minutes, for the dashboard to open. */
  async assignedCall(caller: Caller): Promise<string | undefined> {
    const row = await this.knex('queue_entries')
      .join('calls', 'calls.id', 'queue_entries.call_id')
      .where({ 'queue_entries.accepted_by': caller.user.id, 'queue_entries.auto_routed': true, 'calls.status': 'waiting' })
      .where('queue_entries.accepted_at', '>', new Date(Date.now() - 120_000))
      .orderBy('queue_entries.accepted_at', 'desc')
      .first('calls.id');
    return row?.id;
  }

  async setAvailability(caller: Caller, availability: Availability): Promise<void> {
    await this.knex('users').where({ id: caller.user.id, organisation_id: caller.user.organisationId }).update({ availability });
  }

  async availability(caller: Caller): Promise<Availability> {
    const row = await this.knex('users').where({ id: caller.user.id }).first('availability');
    return row?.availability ?? 'away';
  }
}
