import type { RequestHandler } from 'express';
import { requestMeta } from '../auth/caller';
import { startSession } from '../auth/sign-in';
import { parseBody } from '../http/forms';
import { withFormErrors } from '../http/render-form';
import { flash } from '../http/flash';
import { SetupService, setupSchema } from './service';
import type { Knex } from 'knex';

const VIEW = 'setup/form';

/** GET /setup/:token */
export function setupPage(knex: Knex): RequestHandler {
  return async (req, res) => {
    if (!(await new SetupService(knex).validLink(req.params.token))) {
      return res.status(404).render('auth/link-invalid', { title: req.t('links.invalid_title') });
    }
    res.render(VIEW, { title: req.t('setup.title'), values: {}, errors: {}, token: req.params.token });
  };
}

/** POST /setup/:token: creates the organisation and its first admin, and signs the admin in. */
export function completeSetup(knex: Knex): RequestHandler {
  return async (req, res) => {
    const service = new SetupService(knex);
    if (!(await service.validLink(req.params.token))) {
      return res.status(404).render('auth/link-invalid', { title: req.t('links.invalid_title') });
    }
    await withFormErrors(res, VIEW, { title: req.t('setup.title'), token: req.params.token }, async () => {
      const input = parseBody(setupSchema, req.body);
      const { userId } = await service.complete(req.params.token, input, requestMeta(req));
      await startSession(req, userId);
      flash(req, 'success', 'setup.done');
      res.redirect(303, '/dashboard');
    });
  };
}
