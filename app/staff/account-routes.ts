import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { AccountService, changePasswordSchema, languageSchema } from './password-service';
import { PASSWORD_MIN } from '../security/password-policy';
import { callerOf } from '../access/caller';
import { startSession } from '../access/sign-in';
import type { LoginThrottle } from '../sign-in/throttle';
import { parseBody } from '../http/forms';
import { flash } from '../http/flash';
import { formAction, showPage, type FormPage } from '../http/form-page';
import { LANGUAGE_COOKIE } from '../http/i18n';

/** /account: own password and language. */
const page: FormPage = {
  view: 'account/index',
  load: async (req) => ({ title: req.t('account.title'), minLength: PASSWORD_MIN }),
};

/** GET /account */
export const accountPage: RequestHandler = showPage(page);

/** POST /account/password */
export function changePassword(knex: Knex, throttle: LoginThrottle): RequestHandler {
  return formAction({ page, fields: { current_password: 'secret', password: 'secret', password_confirm: 'secret' } }, async (req, res) => {
    const input = parseBody(changePasswordSchema, req.body);
    await new AccountService(knex).changePassword(callerOf(req), input.current_password, input.password, throttle);
    // The user stays signed in here, in a new session that counts from now on.
    await startSession(req, req.user!.id);
    flash(req, 'success', 'account.password_changed');
    res.redirect(303, '/account');
  });
}

/** POST /account/language */
export function changeLanguage(knex: Knex): RequestHandler {
  return formAction({ page, fields: { language: 'text' } }, async (req, res) => {
    const { language } = parseBody(languageSchema, req.body);
    await new AccountService(knex).setLanguage(callerOf(req), language);
    res.clearCookie(LANGUAGE_COOKIE, { path: '/' });
    flash(req, 'success', 'account.language_changed');
    res.redirect(303, '/account');
  });
}
