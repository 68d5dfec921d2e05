import type { Request, RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { Config } from '../../config';
import { callerOf } from '../access/caller';
import { formAction, showPage, type FormFields, type FormPage } from '../http/form-page';
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

const NEXT: Record<RequestStatus, RequestStatus[]> = { open: ['in_progress', 'rejected'], in_progress: ['completed', 'rejected'], completed: [], rejected: [] };

function service(knex: Knex, req: Request): SubjectRequests {
  return new SubjectRequests(knex, callerOf(req));
}

/** /compliance/requests: the organisation's data-subject requests (overdue ones flagged) and the form to register one. */
function listPage(knex: Knex): FormPage {
  return {
    view: 'requests/index',
    async load(req) {
      const requests = service(knex, req);
      return {
        title: req.t('requests.title'),
        requests: await requests.list(),
        clerks: await requests.clerks(),
        values: { kind: 'erasure', identified_by: 'call_link' },
      };
    },
  };
}

/** The register form. The pasted call link is the customer's secret: it is not shown again. */
const registerFields: FormFields = {
  kind: 'text', identified_by: 'text', call_link: 'secret', reference: 'text', window_from: 'text', window_to: 'text', clerk_id: 'text', note: 'text',
};

/** GET /compliance/requests */
export function listRequests(knex: Knex): RequestHandler {
  return showPage(listPage(knex));
}

/** POST /compliance/requests: registers a request for the customer of a call link, a reference or a time window. */
export function registerRequest(knex: Knex): RequestHandler {
  return formAction({ page: listPage(knex), fields: registerFields }, async (req, res) => {
    const request = await service(knex, req).register(req.body);
    flash(req, 'success', 'requests.registered_flash');
    res.redirect(303, `/compliance/requests/${request.id}`);
  });
}

/** /compliance/requests/:id: one request with its calls, history and the next steps. */
function requestPage(knex: Knex): FormPage {
  return {
    view: 'requests/show',
    async load(req) {
      const requests = service(knex, req);
      const request = await requests.get(String(req.params.id));
      return {
        title: req.t('requests.show_title'),
        request,
        notes: await requests.notes(request.id),
        calls: await requests.calls(request),
        next: NEXT[request.status],
      };
    },
  };
}

/** GET /compliance/requests/:id */
export function showRequest(knex: Knex): RequestHandler {
  return showPage(requestPage(knex));
}

/** POST /compliance/requests/:id/status: the next status, with a note. */
export function changeRequestStatus(knex: Knex): RequestHandler {
  return formAction({ page: requestPage(knex), fields: { status: 'text', note: 'text' } }, async (req, res) => {
    const requests = service(knex, req);
    const request = await requests.get(String(req.params.id));
    await requests.changeStatus(request.id, req.body);
    flash(req, 'success', 'requests.status_flash');
    res.redirect(303, `/compliance/requests/${request.id}`);
  });
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
