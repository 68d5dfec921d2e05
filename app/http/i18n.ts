import type { Request, RequestHandler, Response } from 'express';
import { isLanguage, languages, translator, type Language, type Translate } from '../i18n';
import { dateFormat, DEFAULT_TIME_ZONE, type DateFormat } from '../i18n/dates';

export const LANGUAGE_COOKIE = 'vclerk_lang';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      lang: Language;
      t: Translate;
    }
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return undefined;
}

/**
 * Chooses the language for each request: a signed-in user's saved
 * language, else the visitor's own choice (the language cookie), else the browser's Accept-Language, else the configured default.
 */
export function languageNegotiation(defaultLanguage: Language): RequestHandler {
  return (req, res, next) => {
    negotiateLanguage(req, res, defaultLanguage);
    next();
  };
}

/**
 * Sets the request's language and the views' `t` and date helpers (see
 * languageNegotiation); the error handler calls it for a request that
 * failed before the middleware ran (a session store out of reach).
 */
export function negotiateLanguage(req: Request, res: Response, defaultLanguage: Language): void {
  const chosen = req.user?.language ?? cookieValue(req.headers.cookie, LANGUAGE_COOKIE);
  const accepted = req.headers['accept-language'] ? req.acceptsLanguages(...languages) : false;
  const lang: Language = isLanguage(chosen) ? chosen : isLanguage(accepted) ? accepted : defaultLanguage;
  req.lang = lang;
  req.t = translator(lang);
  res.locals.lang = lang;
  res.locals.t = req.t;
  res.locals.currentPath = req.originalUrl;
  // In the time zone set later for the request (useTimeZone), read when a view formats.
  const dates = (): DateFormat => dateFormat(lang, timeZoneOf(res));
  res.locals.formatDateTime = (...args: Parameters<DateFormat['dateTime']>) => dates().dateTime(...args);
  res.locals.formatDate = (...args: Parameters<DateFormat['date']>) => dates().date(...args);
  res.locals.formatTime = (...args: Parameters<DateFormat['time']>) => dates().time(...args);
  res.vary('Accept-Language');
}

/** Dates on this response are shown in `timeZone` (the organisation's: organisation/time-zone.ts). */
export function useTimeZone(res: Response, timeZone: string): void {
  res.locals.timeZone = timeZone;
}

/** The time zone dates on this response are shown in. */
export function timeZoneOf(res: Response): string {
  return typeof res.locals.timeZone === 'string' ? res.locals.timeZone : DEFAULT_TIME_ZONE;
}
