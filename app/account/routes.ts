import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { AccountService, changePasswordSchema, languageSchema } from '../accounts/service';
import { PASSWORD_MIN } from '../accounts/password-policy';
import { callerOf } from '../auth/caller';
import { startSession } from '../auth/sign-in';
import type { LoginThrottle } from '../auth/throttle';
import { parseBody } from '../http/forms';
import { flash } from '../http/flash';
import { withFormErrors } from '../http/render-form';
import { LANGUAGE_COOKIE } from '../http/i18n';

const VIEW = 'account/index';

/** GET /account: own password and language. */
export const accountPage: RequestHandler = (req, res) => {
  res.render(VIEW, { title: req.t('account.title'), values: {}, errors: {}, minLength: PASSWORD_MIN });
};

/** POST /account/password */
export function changePassword(knex: Knex, throttle: LoginThrottle): RequestHandler {
  return async (req, res) => {
    await withFormErrors(res, VIEW, { title: req.t('account.title'), minLength: PASSWORD_MIN }, async () => {
      const input = parseBody(changePasswordSchema, req.body);
      await new AccountService(knex).changePassword(callerOf(req), input.current_password, input.password, throttle);
      // The user stays signed in here, in a new session that counts from now on.
      await startSession(req, req.user!.id);
      flash(req, 'success', 'account.password_changed');
      res.redirect(303, '/account');
    });
  };
}

/** POST /account/language */
export function changeLanguage(knex: Knex): RequestHandler {
  return async (req, res) => {
    const { language } = parseBody(languageSchema, req.body);
    await new AccountService(knex).setLanguage(callerOf(req), language);
    res.clearCookie(LANGUAGE_COOKIE, { path: '/' });
    flash(req, 'success', 'account.language_changed');
    res.redirect(303, '/account');
  };
}
