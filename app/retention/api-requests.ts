import type { Knex } from 'knex';

const MAX_USER_AGENT = 512;
const MAX_PATH = 2048;

export interface ApiRequestEntry {
  organisationId: string;
  apiKeyId: string;
  keyPrefix: string;
  method: string;
  path: string;
  status: number;
  aborted: boolean;
  ip: string | null;
  userAgent: string | null;
}

export interface LoggedApiRequest extends Omit<ApiRequestEntry, 'organisationId' | 'apiKeyId'> {
  id: string;
  apiKeyId: string | null;
  occurredAt: Date;
}

/**
 * The log of accepted API requests (`api_request_log`): who (key id and
 * prefix), what (method, path, status), from where (client IP, user
 * agent), when. Pruned by the organisation's `api_requests` retention.
 */
export class ApiRequestLog {
  constructor(private readonly knex: Knex) {}

  async record(entry: ApiRequestEntry): Promise<void> {
    await this.knex('api_request_log').insert({
      organisation_id: entry.organisationId,
      api_key_id: entry.apiKeyId,
      key_prefix: entry.keyPrefix,
      method: entry.method.slice(0, 16),
      path: entry.path.slice(0, MAX_PATH),
      status: entry.status,
      aborted: entry.aborted,
      ip: entry.ip,
      user_agent: entry.userAgent ? entry.userAgent.slice(0, MAX_USER_AGENT) : null,
    });
  }

  /** One organisation's requests, newest first, paged. */
  async list(organisationId: string, page: { limit: number; offset: number }): Promise<{ requests: LoggedApiRequest[]; total: number }> {
    const query = this.knex('api_request_log').where({ organisation_id: organisationId });
    const [{ total }] = (await query.clone().count({ total: '*' })) as [{ total: string }];
    const rows = await query.orderBy([{ column: 'occurred_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(page.limit).offset(page.offset);
    return {
      total: Number(total),
      requests: rows.map((r) => ({
        id: String(r.id),
        apiKeyId: r.api_key_id,
        keyPrefix: r.key_prefix,
        method: r.method,
        path: r.path,
        status: r.status,
        aborted: r.aborted,
        ip: r.ip,
        userAgent: r.user_agent,
        occurredAt: r.occurred_at,
      })),
    };
  }
}

/** Deletes the organisation's API request log (purging it), where the table exists. */
export async function deleteRequestLogOf(trx: Knex.Transaction, organisationId: string): Promise<void> {
  if (await trx.schema.hasTable('api_request_log')) await trx('api_request_log').where({ organisation_id: organisationId }).delete();
}

/** The organisation's requests logged before the cutoff (retention). */
export function requestsLoggedBefore(db: Knex, organisationId: string, cutoff: Date): Knex.QueryBuilder {
  return db('api_request_log').where('organisation_id', organisationId).where('occurred_at', '<', cutoff);
}

/** Deletes the requests `due` selects in batches, telling `deleted` each batch's count (retention). */
export async function deleteLoggedRequests(db: Knex, due: () => Knex.QueryBuilder, batchSize: number, deleted: (n: number) => void): Promise<void> {
  for (;;) {
    const n = await db('api_request_log').whereIn('id', due().select('id').limit(batchSize)).del();
    deleted(n);
    if (n < batchSize) break;
  }
}
