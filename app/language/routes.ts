import type { RequestHandler } from 'express';
import { BadRequestError } from '../core/errors';
import { isLanguage } from '../i18n';
import { LANGUAGE_COOKIE } from '../http/i18n';
import { safeReturnPath } from '../http/redirect';

const ONE_YEAR_MS = 365 * 24 * 3600 * 1000;

/**
 * GET /language?lang=de&return=/path: remembers the visitor's language in a
 * strictly necessary preference cookie and goes back to the page. It
 * changes nothing on the server, so it is a plain link or GET form.
 */
export const chooseLanguage: RequestHandler = (req, res) => {
  const lang = req.query.lang;
  if (!isLanguage(lang)) throw new BadRequestError('unsupported_language');
  res.cookie(LANGUAGE_COOKIE, lang, {
    httpOnly: true,
    sameSite: 'lax',
    secure: req.secure,
    maxAge: ONE_YEAR_MS,
    path: '/',
  });
  res.redirect(303, safeReturnPath(req.query.return));
};
