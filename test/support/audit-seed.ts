import type { Knex } from 'knex';
import { eventHash, GENESIS_HASH, type ChainedContent } from '../../app/audit/chain';

export interface SeedOptions {
  /** occurred_at of the first seeded event; each next one `stepMs` later. */
  start?: Date;
  stepMs?: number;
  /** Rows per INSERT (one JSON parameter each). */
  batch?: number;
  /** The action and actor label of event `i` (0-based among the seeded ones). */
  action?: (i: number) => string;
  label?: (i: number) => string;
}

/**
 * Appends `count` valid events to an organisation's hash chain fast: the
 * hashes are computed here with chain.ts and the rows inserted in batches
 * through one json_populate_recordset parameter each (the append-only
 * triggers allow inserts). Continues after the chain's current head, under
 * the same advisory lock AuditService takes.
 */
export async function seedAuditChain(knex: Knex, organisationId: string, count: number, options: SeedOptions = {}): Promise<{ seq: number; hash: string }> {
  const batch = options.batch ?? 5000;
  const stepMs = options.stepMs ?? 1000;
  const start = (options.start ?? new Date('2021-01-01T00:00:00Z')).getTime();
  const action = options.action ?? ((i) => (i % 10 === 0 ? 'auth.login_failed' : 'organisation.updated'));
  const label = options.label ?? ((i) => `seed-${i % 7}@bank.example`);
  let head = { seq: 0, hash: GENESIS_HASH };
  for (let done = 0; done < count; ) {
    const n = Math.min(batch, count - done);
    await knex.transaction(async (trx) => {
      await trx.raw('SELECT pg_advisory_xact_lock(hashtextextended(?, 0))', [`audit:${organisationId}`]);
      const last = await trx('audit_events').where({ chain: organisationId }).orderBy('seq', 'desc').first('seq', 'hash');
      let seq = last ? Number(last.seq) : 0;
      let prev: string = last?.hash ?? GENESIS_HASH;
      const rows: Record<string, unknown>[] = [];
      for (let k = 0; k < n; k++) {
        const i = done + k;
        seq++;
        const content: ChainedContent = {
          chain: organisationId,
          seq,
          occurred_at: new Date(start + i * stepMs).toISOString(),
          organisation_id: organisationId,
          actor_type: 'user',
          actor_id: `00000000-0000-4000-8000-${String(i % 7).padStart(12, '0')}`,
          actor_label: label(i),
          action: action(i),
          target_type: 'organisation',
          target_id: organisationId,
          ip: '192.0.2.10',
          user_agent: 'seed/1.0',
          details: { n: i, note: 'seeded' },
        };
        const hash = eventHash(prev, content);
        rows.push({ ...content, prev_hash: prev, hash });
        prev = hash;
      }
      await trx.raw(
        `INSERT INTO audit_events (chain, seq, occurred_at, organisation_id, actor_type, actor_id, actor_label, action, target_type, target_id, ip, user_agent, details, prev_hash, hash)
         SELECT chain, seq, occurred_at, organisation_id, actor_type, actor_id, actor_label, action, target_type, target_id, ip, user_agent, details, prev_hash, hash
         FROM json_populate_recordset(NULL::audit_events, ?::json)`,
        [JSON.stringify(rows)],
      );
      head = { seq, hash: prev };
    });
    done += n;
  }
  return head;
}
