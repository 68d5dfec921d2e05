import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { Config } from '../../config';
import { callerOf } from '../auth/caller';
import { CallService } from '../calls/service';
import { publicBase } from '../http/links';
import { QueueService } from '../queue/service';
import { overdueRequestCount } from '../requests/service';

/** GET /dashboard: the signed-in user's start page, by role; clerks see the queue and their open calls. */
export function dashboard(knex: Knex, config: Config): RequestHandler {
  return async (req, res) => {
    const locals: Record<string, unknown> = { title: req.t('dashboard.title'), calls: [], values: {}, errors: {} };
    if (req.user?.role === 'clerk') {
      const caller = callerOf(req);
      const queue = new QueueService(knex);
      const calls = new CallService(knex);
      locals.calls = await calls.listOpen(caller);
      locals.pastCalls = await calls.listEnded(caller);
      locals.queue = await queue.list(caller);
      locals.availability = await queue.availability(caller);
      locals.queueUrl = `${publicBase(req, config)}/q/${caller.user.organisationSlug}`;
    }
    if (req.user?.role === 'compliance' || req.user?.role === 'admin') {
      locals.overdueRequests = await overdueRequestCount(knex, req.user.organisationId);
    }
    res.render('dashboard/index', locals);
  };
}
