import type { RequestHandler } from 'express';
import { requestMeta } from '../access/caller';
import { startSession } from '../access/sign-in';
import { parseBody } from '../http/forms';
import { renderPage, submitForm, type Form } from '../http/form-page';
import { flash } from '../http/flash';
import { SetupService, setupSchema } from './service';
import type { Knex } from 'knex';

/** The first-run form: the organisation and its first admin. */
const setupForm: Form = {
  page: { view: 'setup/form', load: async (req) => ({ title: req.t('setup.title'), token: req.params.token }) },
  fields: {
    organisation_name: 'text', organisation_slug: 'text', vat_number: 'text', name: 'text', email: 'text', password: 'secret', password_confirm: 'secret',
    // A slug someone else took is reported on `slug` (shown at organisation_slug); nothing is submitted under this name.
    slug: 'text',
  },
};

/** GET /setup/:token */
export function setupPage(knex: Knex): RequestHandler {
  return async (req, res) => {
    if (!(await new SetupService(knex).validLink(req.params.token))) {
      return res.status(404).render('auth/link-invalid', { title: req.t('links.invalid_title') });
    }
    await renderPage(setupForm.page, req, res, undefined);
  };
}

/** POST /setup/:token: creates the organisation and its first admin, and signs the admin in. */
export function completeSetup(knex: Knex): RequestHandler {
  return async (req, res) => {
    const service = new SetupService(knex);
    if (!(await service.validLink(req.params.token))) {
      return res.status(404).render('auth/link-invalid', { title: req.t('links.invalid_title') });
    }
    await submitForm(setupForm, req, res, undefined, async () => {
      const input = parseBody(setupSchema, req.body);
      const { userId } = await service.complete(req.params.token, input, requestMeta(req));
      await startSession(req, userId);
      flash(req, 'success', 'setup.done');
      res.redirect(303, '/dashboard');
    });
  };
}
