import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../access/caller';
import { flash } from '../http/flash';
import { formAction, showPage, type FormPage } from '../http/form-page';
import { HoldManager } from './manage';
import { holdScopes } from './service';

/** /compliance/holds: active and lifted holds, the form to place one and a lift form per active hold. */
function holdsPage(knex: Knex): FormPage {
  return {
    view: 'holds/list',
    noStore: true,
    async load(req) {
      const holds = await new HoldManager(knex, callerOf(req)).list();
      return { title: req.t('retention.holds.title'), scopes: holdScopes, ...holds, values: { scope: 'call' } };
    },
  };
}

/** GET /compliance/holds */
export function listHolds(knex: Knex): RequestHandler {
  return showPage(holdsPage(knex));
}

/** POST /compliance/holds: places a hold (audited with its reason). */
export function placeHold(knex: Knex): RequestHandler {
  return formAction({ page: holdsPage(knex), fields: { scope: 'text', target: 'text', reason: 'text' } }, async (req, res) => {
    await new HoldManager(knex, callerOf(req)).place(req.body);
    flash(req, 'success', 'retention.holds.placed');
    res.redirect(303, '/compliance/holds');
  });
}

/** POST /compliance/holds/:id/lift: lifts a hold (audited with the reason); a refusal shows at that hold's form. */
export function liftHold(knex: Knex): RequestHandler {
  return formAction({ page: holdsPage(knex), fields: { lift_reason: 'text' } }, async (req, res) => {
    await new HoldManager(knex, callerOf(req)).lift(String(req.params.id), req.body);
    flash(req, 'success', 'retention.holds.lifted');
    res.redirect(303, '/compliance/holds');
  });
}
