import type { Knex } from 'knex';
import type { InsightsReport } from './figures';

/** Who asks: a signed-in admin or clerk, or the organisation's own systems (an API key with `insights:read`). */
export interface Viewer {
  organisationId: string;
  /** The signed-in user; null for an API key. */
  userId: string | null;
  role: 'admin' | 'clerk' | 'api';
}

/**
 * What to show (raw query values, validated here): `period` day|week|month|custom (default month),
 * `date` (YYYY-MM-DD, a day in the period; default today), `from`/`to` (custom), and `subject`:
 * `team` (the organisation) or a clerk's id. Default subject: the team for admins and the API, the
 * clerk themself for a clerk.
 */
export type ReportQuery = Record<string, unknown>;

export class InsightsService {
  constructor(private readonly knex: Knex) {}

  /** The report; ValidationError for bad input, ForbiddenError('insights_not_yours') when a clerk asks for another clerk's figures the organisation does not share. */
  async report(viewer: Viewer, query: ReportQuery): Promise<InsightsReport> {
    void this.knex;
    void viewer;
    void query;
    throw new Error('being written');
  }
}
