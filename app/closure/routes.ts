import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../auth/caller';
import { destroySession } from '../auth/session';
import type { CallHub } from '../calls/hub';
import { ValidationError } from '../errors';
import { OrganisationClosure, PURGE_AFTER_DAYS } from './service';

export interface ClosureDeps {
  knex: Knex;
  hub?: CallHub;
}

const FIELD_CODES = new Set(['required', 'too_long', 'name_mismatch']);

/** GET /admin/organisation/close: what closing means, and the confirmation form. */
export function closurePage(knex: Knex): RequestHandler {
  return async (req, res) => {
    const status = await new OrganisationClosure(knex, callerOf(req)).status();
    res.render('closure/close', { title: req.t('requests.closure.title'), organisationName: status.name, days: PURGE_AFTER_DAYS, errors: {} });
  };
}

/**
 * POST /admin/organisation/close: closes the organisation once its name is
 * typed; open calls end at once (their participants are disconnected) and
 * the admin's own session ends with this answer.
 */
export function closeOrganisation(deps: ClosureDeps): RequestHandler {
  return async (req, res) => {
    const closure = new OrganisationClosure(deps.knex, callerOf(req));
    let result;
    try {
      result = await closure.close(req.body);
    } catch (err) {
      if (!(err instanceof ValidationError) || req.accepts(['html', 'json']) !== 'html') throw err;
      const errors = Object.fromEntries(err.fields.map((f) => [f.field, `requests.closure.errors.${FIELD_CODES.has(f.code) ? f.code : 'required'}`]));
      const status = await closure.status();
      res.status(400).render('closure/close', { title: req.t('requests.closure.title'), organisationName: status.name, days: PURGE_AFTER_DAYS, errors });
      return;
    }
    for (const callId of result.endedCallIds) await deps.hub?.endCall(callId, 'organisation_closed');
    const t = req.t;
    const lang = req.lang;
    await destroySession(req);
    res.locals.user = undefined;
    res.render('closure/closed', { title: t('requests.closure.closed_title'), purgeAfter: result.purgeAfter.toLocaleDateString(lang, { timeZone: 'UTC', dateStyle: 'long' }) });
  };
}
