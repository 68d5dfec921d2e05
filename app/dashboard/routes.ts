import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { Config } from '../../config';
import { callerOf } from '../access/caller';
import { CallService } from '../calls/service';
import { showPage, type Form, type FormPage } from '../http/form-page';
import { publicBase } from '../http/links';
import { QueueService } from '../queue/service';
import { overdueRequestCount } from '../requests/service';

/** The signed-in user's start page, by role; clerks see the queue, their open and their past calls. */
export function dashboardPage(knex: Knex, config: Config): FormPage {
  return {
    view: 'dashboard/index',
    async load(req) {
      const data: Record<string, unknown> = { title: req.t('dashboard.title'), calls: [] };
      if (req.user?.role === 'clerk') {
        const caller = callerOf(req);
        const queue = new QueueService(knex);
        const calls = new CallService(knex);
        data.calls = await calls.listOpen(caller);
        data.pastCalls = await calls.listEnded(caller);
        data.queue = await queue.list(caller);
        data.availability = await queue.availability(caller);
        data.queueUrl = `${publicBase(req, config)}/q/${caller.user.organisationSlug}`;
      }
      if (req.user?.role === 'compliance' || req.user?.role === 'admin') {
        data.overdueRequests = await overdueRequestCount(knex, req.user.organisationId);
      }
      return data;
    },
  };
}

/** The dashboard's forms: a clerk's "start a call" and availability. */
export function dashboardForms(knex: Knex, config: Config) {
  const page = dashboardPage(knex, config);
  return {
    startCall: { page, fields: { reference: 'text', scheduled_at: 'text', valid_hours: 'text' } },
    availability: { page, fields: { availability: 'text' } },
  } satisfies Record<string, Form>;
}

/** GET /dashboard */
export function dashboard(knex: Knex, config: Config): RequestHandler {
  return showPage(dashboardPage(knex, config));
}
