import type { Knex } from 'knex';
import { migrationStatus } from '../db/migrations';
import { probeDatabase } from '../db/watchdog';

export interface Readiness {
  ready: boolean;
  checks: { database: 'ok' | 'unreachable'; migrations: 'current' | 'pending' | 'unknown' };
  pendingMigrations?: string[];
}

/** How long the readiness probe waits for the database before it answers "unreachable". */
const PROBE_TIMEOUT_MS = 2000;

/** Whether the appliance can serve: the database answers and its schema is current. */
export class HealthService {
  constructor(private readonly knex: Knex) {}

  async readiness(): Promise<Readiness> {
    if (!(await probeDatabase(this.knex, PROBE_TIMEOUT_MS))) {
      return { ready: false, checks: { database: 'unreachable', migrations: 'unknown' } };
    }
    let pending: string[];
    try {
      ({ pending } = await migrationStatus(this.knex));
    } catch {
      return { ready: false, checks: { database: 'unreachable', migrations: 'unknown' } };
    }
    if (pending.length > 0) {
      return { ready: false, checks: { database: 'ok', migrations: 'pending' }, pendingMigrations: pending };
    }
    return { ready: true, checks: { database: 'ok', migrations: 'current' } };
  }
}
