import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { callerOf } from '../auth/caller';
import { flash } from '../http/flash';
import { withRetentionFormErrors } from '../retention/forms';
import { HoldManager } from './manage';
import { holdScopes } from './service';

async function listLocals(knex: Knex, req: Parameters<RequestHandler>[0]) {
  const holds = await new HoldManager(knex, callerOf(req)).list();
  return { title: req.t('retention.holds.title'), scopes: holdScopes, ...holds };
}

/** GET /compliance/holds: active and lifted holds, and the form to place one. */
export function listHolds(knex: Knex): RequestHandler {
  return async (req, res) => {
    res.set('Cache-Control', 'no-store').render('holds/list', { ...(await listLocals(knex, req)), values: { scope: 'call' }, errors: {}, liftErrors: {}, liftFor: null, liftValue: '' });
  };
}

/** POST /compliance/holds: places a hold (audited with its reason). */
export function placeHold(knex: Knex): RequestHandler {
  return async (req, res) => {
    await withRetentionFormErrors(res, 'holds/list', { ...(await listLocals(knex, req)), liftErrors: {}, liftFor: null, liftValue: '' }, async () => {
      await new HoldManager(knex, callerOf(req)).place(req.body);
      flash(req, 'success', 'retention.holds.placed');
      res.redirect(303, '/compliance/holds');
    });
  };
}

/** POST /compliance/holds/:id/lift: lifts a hold (audited with the reason). */
export function liftHold(knex: Knex): RequestHandler {
  return async (req, res) => {
    const id = String(req.params.id);
    const locals = { ...(await listLocals(knex, req)), values: { scope: 'call' }, errors: {}, liftFor: id, liftValue: typeof req.body?.lift_reason === 'string' ? req.body.lift_reason : '' };
    await withRetentionFormErrors(res, 'holds/list', locals, async () => {
      await new HoldManager(knex, callerOf(req)).lift(id, req.body);
      flash(req, 'success', 'retention.holds.lifted');
      res.redirect(303, '/compliance/holds');
    }, 'liftErrors');
  };
}
