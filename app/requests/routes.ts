import type { Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import type { Config } from '../../config';
import { callerOf } from '../auth/caller';
import { ValidationError } from '../errors';
import { flash } from '../http/flash';
import { AccessExport } from './access-zip';
import { ErasureExecution } from './erasure';
import { SubjectRequests, type RequestStatus } from './service';

export interface RequestDeps {
  knex: Knex;
  config: Config;
  /** The key for encrypted recordings, or null. */
  recordingKey: Buffer | null;
}

const FIELD_CODES = new Set(['required', 'invalid', 'too_long', 'invalid_date', 'date_order', 'invalid_link', 'no_calls']);
const NEXT: Record<RequestStatus, RequestStatus[]> = { open: ['in_progress', 'rejected'], in_progress: ['completed', 'rejected'], completed: [], rejected: [] };

function service(knex: Knex, req: Request): SubjectRequests {
  return new SubjectRequests(knex, callerOf(req));
}

async function renderList(knex: Knex, req: Request, res: Response, status = 200, values: Record<string, unknown> = {}, errors: Record<string, string> = {}): Promise<void> {
  const requests = service(knex, req);
  res.status(status).render('requests/index', {
    title: req.t('requests.title'),
    requests: await requests.list(),
    clerks: await requests.clerks(),
    values: { kind: 'erasure', identified_by: 'call_link', ...values },
    errors,
  });
}

/** GET /compliance/requests: the organisation's data-subject requests (overdue ones flagged) and the form to register one. */
export function listRequests(knex: Knex): RequestHandler {
  return (req, res) => renderList(knex, req, res);
}

/** POST /compliance/requests: registers a request for the customer of a call link, a reference or a time window. */
export function registerRequest(knex: Knex): RequestHandler {
  return async (req, res) => {
    try {
      const request = await service(knex, req).register(req.body);
      flash(req, 'success', 'requests.registered_flash');
      res.redirect(303, `/compliance/requests/${request.id}`);
    } catch (err) {
      if (!(err instanceof ValidationError) || req.accepts(['html', 'json']) !== 'html') throw err;
      // The pasted link is the customer's secret: it is not shown again.
      const { _csrf, call_link, ...values } = (req.body ?? {}) as Record<string, unknown>;
      void _csrf;
      void call_link;
      const errors = Object.fromEntries(err.fields.map((f) => [f.field, `requests.errors.${FIELD_CODES.has(f.code) ? f.code : 'invalid'}`]));
      await renderList(knex, req, res, 400, values, errors);
    }
  };
}

/** GET /compliance/requests/:id: one request with its calls, history and the next steps. */
export function showRequest(knex: Knex): RequestHandler {
  return async (req, res) => {
    const requests = service(knex, req);
    const request = await requests.get(String(req.params.id));
    res.render('requests/show', {
      title: req.t('requests.show_title'),
      request,
      notes: await requests.notes(request.id),
      calls: await requests.calls(request),
      next: NEXT[request.status],
    });
  };
}

/** POST /compliance/requests/:id/status: the next status, with a note. */
export function changeRequestStatus(knex: Knex): RequestHandler {
  return async (req, res) => {
    const requests = service(knex, req);
    const request = await requests.get(String(req.params.id));
    await requests.changeStatus(request.id, req.body);
    flash(req, 'success', 'requests.status_flash');
    res.redirect(303, `/compliance/requests/${request.id}`);
  };
}

/** POST /compliance/requests/:id/execute: erases the data (legal holds respected), or prepares the access export. */
export function executeRequest(deps: RequestDeps): RequestHandler {
  return async (req, res) => {
    const caller = callerOf(req);
    const request = await new SubjectRequests(deps.knex, caller).get(String(req.params.id));
    if (request.kind === 'erasure') {
      const result = await new ErasureExecution(deps.knex, caller).execute(request.id, deps.config.dataDir);
      flash(req, result.held.length ? 'info' : 'success', result.held.length ? 'requests.erased_held_flash' : 'requests.erased_flash', { count: result.held.length });
    } else {
      await new AccessExport(deps.knex, caller).prepare(request.id, deps.config.dataDir);
      flash(req, 'success', 'requests.prepared_flash');
    }
    res.redirect(303, `/compliance/requests/${request.id}`);
  };
}

/** GET /compliance/requests/:id/download: the access request's ZIP, built while it is sent (audited). */
export function downloadRequest(deps: RequestDeps): RequestHandler {
  return async (req, res) => {
    const caller = callerOf(req);
    const request = await new SubjectRequests(deps.knex, caller).get(String(req.params.id));
    try {
      await new AccessExport(deps.knex, caller).send(request.id, res, { dataDir: deps.config.dataDir, key: deps.recordingKey, t: req.t });
    } catch (err) {
      if (!res.headersSent) throw err;
      req.log?.error({ err, requestId: request.id }, 'access export broken off');
    }
  };
}
