import type { RequestHandler } from 'express';
import { isLanguage, languages, translator, type Language, type Translate } from '../i18n';

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
    const chosen = req.user?.language ?? cookieValue(req.headers.cookie, LANGUAGE_COOKIE);
    const accepted = req.headers['accept-language'] ? req.acceptsLanguages(...languages) : false;
    const lang: Language = isLanguage(chosen) ? chosen : isLanguage(accepted) ? accepted : defaultLanguage;
    req.lang = lang;
    req.t = translator(lang);
    res.locals.lang = lang;
    res.locals.t = req.t;
    res.locals.currentPath = req.originalUrl;
    res.vary('Accept-Language');
    next();
  };
}
