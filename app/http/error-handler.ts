import type { ErrorRequestHandler, Request, Response } from 'express';
import { AppError, fromFrameworkError, ServiceUnavailableError } from '../core/errors';
import { isDatabaseUnavailable } from '../db/unavailable';
import { translator, type Language } from '../i18n';
import { negotiateLanguage } from './i18n';
import { safeReturnPath } from './redirect';

interface ErrorBody {
  code: string;
  message: string;
  requestId: string;
  details?: unknown;
}

/**
 * The one error handler. Typed errors answer with their status and stable
 * code; a database out of reach answers 503 `database_unavailable` (with
 * Retry-After); anything else is logged with its stack and answered with a generic
 * 500 that shows only the tracking id (the request id). The body is JSON or
 * an HTML page, whichever the client prefers.
 */
export function errorHandler(defaultLanguage: Language = 'en'): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) {
      if (!isDatabaseUnavailable(err)) return next(err);
      // express-session saves (or touches) the session once the handler has ended the response and reports a failure
      // then, while the body may still be flushing (compression): passing it on at once would cut the connection
      // mid-body. The answer the client got stands; only a response that does not finish is cut (Express's handler).
      req.log?.warn({ err }, 'the database failed after the response had begun');
      if (res.writableFinished) return;
      const timer = setTimeout(() => next(err), 2000);
      const done = () => clearTimeout(timer);
      res.once('finish', done);
      res.once('close', done);
      return;
    }
    // A request that failed before the language was chosen (its session could not be read) still gets a page in its language.
    if (!res.locals.t) negotiateLanguage(req, res, defaultLanguage);
    // The database out of reach (restarting, a lost connection) is a passing outage: 503, not a 500.
    const known = fromFrameworkError(err) ?? (isDatabaseUnavailable(err) ? new ServiceUnavailableError('database_unavailable', { cause: err }) : undefined);
    const error = known ?? new AppError(500, 'internal_error');
    const requestId = String(req.id ?? '');
    if (known) {
      if (known.status >= 500) req.log?.error({ err }, known.code);
      else req.log?.debug({ code: known.code }, 'request refused');
    } else {
      (req.log ?? console).error({ err }, 'unhandled error');
    }
    const t = req.t ?? translator('en');
    const body: ErrorBody = { code: error.code, message: t(error.messageKey, error.params), requestId };
    if (error.details !== undefined) body.details = error.details;
    sendError(req, res, error.status, body);
  };
}

const TITLED = new Set([400, 401, 403, 404, 409, 413, 415, 429, 500, 503]);

function sendError(req: Request, res: Response, status: number, body: ErrorBody): void {
  res.status(status);
  if (status === 503) res.setHeader('Retry-After', '5');
  // The REST API always answers JSON, whatever the client accepts.
  if (req.path.startsWith('/api/')) {
    res.json({ error: body });
    return;
  }
  res.format({
    html: () => {
      const t = req.t ?? translator('en');
      const titleKey = TITLED.has(status) ? `errors.titles.${status}` : 'errors.titles.default';
      const retry = body.code === 'csrf_invalid' ? retryPath(req) : undefined;
      res.render('errors/error', { status, error: body, title: t(titleKey), retry }, (renderErr, html) => {
        if (renderErr) {
          req.log?.error({ err: renderErr }, 'the error page could not be rendered');
          res.type('text/plain').send(`${body.message} (${body.code}, ${body.requestId})`);
        } else {
          res.send(html);
        }
      });
    },
    json: () => res.json({ error: body }),
    default: () => res.type('text/plain').send(`${body.message} (${body.code}, ${body.requestId})`),
  });
}

/**
 * Where an expired form's page offers to go back to: the page the form was
 * on. Forms that matter name it in a hidden `_back` field (pages send no
 * Referer: the referrer policy is no-referrer); else a Referer of this same
 * origin counts. Only a safe same-site path (`safeReturnPath`) is offered,
 * else nothing (the page then offers only the start page).
 */
export function retryPath(req: Request): string | undefined {
  const back = (req.body as Record<string, unknown> | undefined)?._back;
  if (typeof back === 'string') return sameSitePath(back);
  const referer = req.get('referer');
  const host = req.get('host');
  if (!referer || !host) return undefined;
  let url: URL;
  try {
    url = new URL(referer);
  } catch {
    return undefined;
  }
  if (url.origin !== `${req.protocol}://${host}`) return undefined;
  return sameSitePath(`${url.pathname}${url.search}`);
}

function sameSitePath(value: string): string | undefined {
  const path = safeReturnPath(value);
  return path === value ? path : undefined;
}
