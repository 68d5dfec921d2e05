import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../access/caller';
import { destroySession } from '../access/session';
import type { CallHub } from '../calls/hub';
import { formAction, showPage, type Form } from '../http/form-page';
import { OrganisationClosure, PURGE_AFTER_DAYS } from './service';

export interface ClosureDeps {
  knex: Knex;
  hub?: CallHub;
}

/** /admin/organisation/close: what closing means, and the confirmation form. */
function closeForm(knex: Knex): Form {
  return {
    page: {
      view: 'closure/close',
      async load(req) {
        const status = await new OrganisationClosure(knex, callerOf(req)).status();
        return { title: req.t('requests.closure.title'), organisationName: status.name, days: PURGE_AFTER_DAYS };
      },
    },
    fields: { confirm_name: 'text' },
  };
}

/** GET /admin/organisation/close */
export function closurePage(knex: Knex): RequestHandler {
  return showPage(closeForm(knex).page);
}

/**
 * POST /admin/organisation/close: closes the organisation once its name is
 * typed; open calls end at once (their participants are disconnected) and
 * the admin's own session ends with this answer.
 */
export function closeOrganisation(deps: ClosureDeps): RequestHandler {
  return formAction(closeForm(deps.knex), async (req, res) => {
    const result = await new OrganisationClosure(deps.knex, callerOf(req)).close(req.body);
    for (const callId of result.endedCallIds) await deps.hub?.endCall(callId, 'organisation_closed');
    const t = req.t;
    await destroySession(req);
    res.locals.user = undefined;
    res.render('closure/closed', { title: t('requests.closure.closed_title'), purgeAfter: result.purgeAfter });
  });
}
