import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { OpsProbe } from '../ops/probe';
import { HealthService } from './service';

/**
 * GET /healthz: the process serves HTTP and its database has not been
 * unreachable for longer than VCLERK_DB_UNHEALTHY_SECONDS (the database
 * watchdog's last view; nothing is asked here). The container's health
 * check reads it, so an appliance that lost its database for good shows
 * as unhealthy instead of healthy forever.
 */
export function liveness(ctx: { ops?: OpsProbe }): RequestHandler {
  return (_req, res) => {
    const health = ctx.ops?.database?.watchdog?.health();
    res.set('Cache-Control', 'no-store');
    if (health && !health.healthy) {
      res.status(503).json({ status: 'unhealthy', database: 'unreachable', unreachableSeconds: Math.floor((Date.now() - health.downSince!) / 1000) });
      return;
    }
    res.json({ status: 'ok' });
  };
}

/** GET /readyz: the database answers now and every migration has run. */
export function readiness(ctx: { db: Knex }): RequestHandler {
  return async (_req, res) => {
    const result = await new HealthService(ctx.db).readiness();
    res
      .status(result.ready ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json({ status: result.ready ? 'ready' : 'not_ready', ...result.checks, pendingMigrations: result.pendingMigrations });
  };
}
