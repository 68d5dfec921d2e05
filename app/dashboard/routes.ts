import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../auth/caller';
import { CallService } from '../calls/service';

/** GET /dashboard: the signed-in user's start page, by role; clerks see their open calls. */
export function dashboard(knex: Knex): RequestHandler {
  return async (req, res) => {
    const calls = req.user?.role === 'clerk' ? await new CallService(knex).listOpen(callerOf(req)) : [];
    res.render('dashboard/index', { title: req.t('dashboard.title'), calls, values: {}, errors: {} });
  };
}
