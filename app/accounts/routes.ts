import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { requestMeta } from '../auth/caller';
import { parseBody } from '../http/forms';
import { flash } from '../http/flash';
import { withFormErrors } from '../http/render-form';
import { AccountService, newPasswordSchema } from './service';

type LinkPurpose = 'invite' | 'password_reset';

const VIEW = 'auth/set-password';

/** GET /invite/:token and GET /password-reset/:token: choose a password. */
export function setPasswordPage(knex: Knex, purpose: LinkPurpose): RequestHandler {
  return async (req, res) => {
    const user = await new AccountService(knex).linkUser(purpose, req.params.token);
    if (!user) return res.status(404).render('auth/link-invalid', { title: req.t('links.invalid_title') });
    res.render(VIEW, { title: req.t(`links.${purpose}_title`), purpose, account: user, values: {}, errors: {} });
  };
}

/** POST /invite/:token and POST /password-reset/:token */
export function setPassword(knex: Knex, purpose: LinkPurpose): RequestHandler {
  return async (req, res) => {
    const service = new AccountService(knex);
    const user = await service.linkUser(purpose, req.params.token);
    if (!user) return res.status(404).render('auth/link-invalid', { title: req.t('links.invalid_title') });
    await withFormErrors(res, VIEW, { title: req.t(`links.${purpose}_title`), purpose, account: user }, async () => {
      const input = parseBody(newPasswordSchema, req.body);
      await service.setPasswordWithLink(purpose, req.params.token, input.password, requestMeta(req));
      flash(req, 'success', 'links.password_set');
      res.redirect(303, '/login');
    });
  };
}
