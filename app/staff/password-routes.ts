import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { requestMeta } from '../access/caller';
import { parseBody } from '../http/forms';
import { flash } from '../http/flash';
import { renderPage, submitForm, type Form } from '../http/form-page';
import { AccountService, newPasswordSchema } from './password-service';

type LinkPurpose = 'invite' | 'password_reset';

type LinkUser = NonNullable<Awaited<ReturnType<AccountService['linkUser']>>>;

/** The page of an invitation or reset link: choose a password (for the link's user, looked up by the handler). */
function passwordPage(purpose: LinkPurpose): Form<LinkUser> {
  return {
    page: { view: 'auth/set-password', load: async (req, account) => ({ title: req.t(`links.${purpose}_title`), purpose, account }) },
    fields: { password: 'secret', password_confirm: 'secret' },
  };
}

/** GET /invite/:token and GET /password-reset/:token: choose a password. */
export function setPasswordPage(knex: Knex, purpose: LinkPurpose): RequestHandler {
  const form = passwordPage(purpose);
  return async (req, res) => {
    const user = await new AccountService(knex).linkUser(purpose, req.params.token);
    if (!user) return res.status(404).render('auth/link-invalid', { title: req.t('links.invalid_title') });
    await renderPage(form.page, req, res, user);
  };
}

/** POST /invite/:token and POST /password-reset/:token */
export function setPassword(knex: Knex, purpose: LinkPurpose): RequestHandler {
  const form = passwordPage(purpose);
  return async (req, res) => {
    const service = new AccountService(knex);
    const user = await service.linkUser(purpose, req.params.token);
    if (!user) return res.status(404).render('auth/link-invalid', { title: req.t('links.invalid_title') });
    await submitForm(form, req, res, user, async () => {
      const input = parseBody(newPasswordSchema, req.body);
      await service.setPasswordWithLink(purpose, req.params.token, input.password, requestMeta(req));
      flash(req, 'success', 'links.password_set');
      res.redirect(303, '/login');
    });
  };
}
