import type { Knex } from 'knex';
import { migrationStatus } from '../db/migrations';

export interface Readiness {
  ready: boolean;
  checks: { database: 'ok' | 'unreachable'; migrations: 'current' | 'pending' | 'unknown' };
  pendingMigrations?: string[];
}

/** Whether the appliance can serve: the database answers and its schema is current. */
export class HealthService {
  constructor(private readonly knex: Knex) {}

  async readiness(): Promise<Readiness> {
    try {
      await this.knex.raw('SELECT 1');
    } catch {
      return { ready: false, checks: { database: 'unreachable', migrations: 'unknown' } };
    }
    const { pending } = await migrationStatus(this.knex);
    if (pending.length > 0) {
      return { ready: false, checks: { database: 'ok', migrations: 'pending' }, pendingMigrations: pending };
    }
    return { ready: true, checks: { database: 'ok', migrations: 'current' } };
  }
}
