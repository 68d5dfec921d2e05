import type { Knex } from 'knex';
import { ChainVerifier, eventHash, GENESIS_HASH, type ChainBreak, type ChainRow, type ChainedContent } from './chain';
import type { Actor, AuditAction } from './actions';
import { revealRows, sealCustomerMeta, type CustomerScope } from './personal';
import { chainEventsAfter, chainHead, insertEvent, listEvents } from './store';
import type { AuditEventRow } from '../db/tables';

export interface AuditEventInput {
  /** The organisation the event belongs to; null for appliance-wide events. */
  organisationId: string | null;
  actor: Actor;
  action: AuditAction;
  target?: { type: string; id: string };
  ip?: string | null;
  userAgent?: string | null;
  /**
   * Set when `ip` and `userAgent` are an anonymous customer's (joining,
   * leaving, consent ...): they are then stored only encrypted under the
   * call's key (or the organisation's key of the month without a call),
   * which retention and erasure destroy. See personal.ts.
   */
  customer?: CustomerScope;
  details?: Record<string, unknown>;
}

export interface AuditEvent {
  id: string;
  seq: number;
  occurredAt: Date;
  actorType: string;
  actorId: string | null;
  actorLabel: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  ip: string | null;
  userAgent: string | null;
  /** The customer's IP was recorded, but its key is destroyed (retention, erasure): `ip` is null. */
  personalErased: boolean;
  details: Record<string, unknown>;
}

export interface AuditFilter {
  from?: Date;
  to?: Date;
  actor?: string;
  action?: string;
}

export interface VerifyResult {
  ok: boolean;
  count: number;
  headHash: string;
  broken?: ChainBreak;
}

const SYSTEM_CHAIN = 'system';
const MAX_USER_AGENT = 512;

export function chainOf(organisationId: string | null): string {
  return organisationId ?? SYSTEM_CHAIN;
}

/**
 * Writes and reads the audit trail. `record` appends one event to its
 * organisation's hash chain; pass the caller's transaction so that the
 * event is written if and only if the change it describes is.
 */
/** Per pool, the tail of each chain's in-process queue of standalone writes (shared by every AuditService on that pool). */
const chainQueues = new WeakMap<Knex, Map<string, Promise<unknown>>>();

export class AuditService {
  /** `now` is the clock for `occurred_at`; tests pass a fixed one to place events in time. */
  constructor(private readonly knex: Knex, private readonly now: () => Date = () => new Date()) {}

  async record(event: AuditEventInput, trx?: Knex.Transaction): Promise<void> {
    if (trx) return this.append(trx, event);
    // Writers of one chain wait here, without a pool connection: waiting for
    // the chain's lock inside a transaction held a connection each, and a
    // burst (many participants leaving at once) used up the pool.
    return this.inTurn(chainOf(event.organisationId), () => this.knex.transaction((t) => this.append(t, event)));
  }

  private inTurn<T>(chain: string, work: () => Promise<T>): Promise<T> {
    let queues = chainQueues.get(this.knex);
    if (!queues) chainQueues.set(this.knex, (queues = new Map()));
    const previous = queues.get(chain) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    queues.set(chain, tail);
    void tail.then(() => {
      if (queues.get(chain) === tail) queues.delete(chain);
    });
    return result;
  }

  private async append(trx: Knex.Transaction, event: AuditEventInput): Promise<void> {
    const chain = chainOf(event.organisationId);
    // One writer per chain at a time; the lock ends with the transaction.
    await trx.raw('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', [`audit:${chain}`]);
    const last = await chainHead(trx, chain);
    const actor = event.actor;
    const content: ChainedContent = {
      chain,
      seq: last ? Number(last.seq) + 1 : 1,
      occurred_at: this.now().toISOString(),
      organisation_id: event.organisationId,
      actor_type: actor.type,
      actor_id: 'id' in actor && actor.id !== undefined ? actor.id : null,
      actor_label: actor.label ?? null,
      action: event.action,
      target_type: event.target?.type ?? null,
      target_id: event.target?.id ?? null,
      ip: event.ip ?? null,
      user_agent: event.userAgent ? event.userAgent.slice(0, MAX_USER_AGENT) : null,
      details: event.details ?? {},
    };
    if (event.customer) {
      if (!event.organisationId) throw new Error('a customer event belongs to an organisation');
      Object.assign(content, await sealCustomerMeta(trx, event.organisationId, event.customer, new Date(content.occurred_at), content));
    }
    const prevHash = last?.hash ?? GENESIS_HASH;
    await insertEvent(trx, {
      ...content,
      details: JSON.stringify(content.details),
      prev_hash: prevHash,
      hash: eventHash(prevHash, content),
    });
  }

  /**
   * One organisation's events, newest first, filtered and paged. `from` is
   * inclusive and `to` exclusive; `action` matches one action or a prefix
   * (`auth` matches `auth.*`); `actor` matches part of the actor's label or
   * the exact actor id.
   */
  async list(organisationId: string, filter: AuditFilter, page: { limit: number; offset: number }): Promise<{ events: AuditEvent[]; total: number }> {
    const { rows, total } = await listEvents(this.knex, organisationId, (query) => applyAuditFilter(query, filter), page);
    return { events: await revealEvents(this.knex, rows), total };
  }

  /** Recomputes one chain (an organisation's, or the system chain for null) and reports the first broken link. */
  async verify(organisationId: string | null, batchSize = 2000): Promise<VerifyResult> {
    const chain = chainOf(organisationId);
    const verifier = new ChainVerifier();
    let after = 0;
    for (;;) {
      const rows = await chainEventsAfter(this.knex, chain, after, batchSize);
      if (rows.length === 0) break;
      if (!verifier.feed(rows.map(toChainRow))) break;
      after = Number(rows[rows.length - 1]!.seq);
    }
    return { ok: !verifier.broken, count: verifier.count, headHash: verifier.headHash, broken: verifier.broken };
  }
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The audit filter's conditions (the audit page and the export alike):
 * `from` inclusive, `to` exclusive; `action` one action or a group
 * (`auth` matches `auth.*`); `actor` part of the actor's label or the
 * exact actor id.
 */
export function applyAuditFilter(query: Knex.QueryBuilder, filter: AuditFilter): void {
  if (filter.from) query.where('occurred_at', '>=', filter.from);
  if (filter.to) query.where('occurred_at', '<', filter.to);
  if (filter.action) {
    const action = filter.action;
    query.where((q) => q.where('action', action).orWhere('action', 'like', `${escapeLike(action)}.%`));
  }
  if (filter.actor) {
    const actor = filter.actor;
    query.where((q) => q.whereILike('actor_label', `%${escapeLike(actor)}%`).orWhere('actor_id', actor));
  }
}

function toChainRow(row: AuditEventRow): ChainRow {
  return { ...row, seq: Number(row.seq), occurred_at: row.occurred_at.toISOString() };
}

/** `audit_events` rows as the pages show them: customers' IPs and user agents decrypted while their key exists. */
export async function revealEvents(knex: Knex, rows: AuditEventRow[]): Promise<AuditEvent[]> {
  const revealed = await revealRows(knex, rows.map((row) => ({ ip: row.ip ?? null, user_agent: row.user_agent ?? null })));
  return rows.map((row, i) => ({ ...toEvent({ ...row, ...revealed[i] }), personalErased: revealed[i]!.erased.includes('ip') }));
}

/** An `audit_events` row as stored (customers' IPs and user agents still encrypted: see revealEvents). */
export function toEvent(row: AuditEventRow): AuditEvent {
  return {
    id: String(row.id),
    seq: Number(row.seq),
    occurredAt: row.occurred_at,
    actorType: row.actor_type,
    actorId: row.actor_id ?? null,
    actorLabel: row.actor_label ?? null,
    action: row.action,
    targetType: row.target_type ?? null,
    targetId: row.target_id ?? null,
    ip: row.ip ?? null,
    userAgent: row.user_agent ?? null,
    personalErased: false,
    details: row.details ?? {},
  };
}
