import type { RequestHandler } from 'express';
import type { AppContext } from '../context';
import { HealthService } from './service';

/** GET /healthz: the process is up and serving HTTP. Touches nothing else. */
export const liveness: RequestHandler = (_req, res) => {
  res.set('Cache-Control', 'no-store').json({ status: 'ok' });
};

/** GET /readyz: the database is reachable and every migration has run. */
export function readiness(ctx: AppContext): RequestHandler {
  return async (_req, res) => {
    const result = await new HealthService(ctx.db).readiness();
    res
      .status(result.ready ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json({ status: result.ready ? 'ready' : 'not_ready', ...result.checks, pendingMigrations: result.pendingMigrations });
  };
}
