import compression from 'compression';
import type { Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';

/**
 * Security headers. The Content-Security-Policy allows only what the
 * appliance serves itself: no inline script or style, no other origin.
 * Later features widen it where they must (the website widget's
 * frame-ancestors, per organisation), never globally.
 */
export const contentSecurityPolicy = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'"],
  'style-src-attr': ["'none'"],
  'img-src': ["'self'", 'data:', 'blob:'],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'media-src': ["'self'", 'blob:'],
  'worker-src': ["'self'", 'blob:'],
  'object-src': ["'none'"],
  'frame-src': ["'none'"],
  'frame-ancestors': ["'none'"],
  'form-action': ["'self'"],
};

export function securityHeaders(): RequestHandler[] {
  return [
    helmet({
      contentSecurityPolicy: { useDefaults: false, directives: contentSecurityPolicy },
      referrerPolicy: { policy: 'no-referrer' },
      crossOriginEmbedderPolicy: false,
      xFrameOptions: { action: 'deny' },
    }),
    (_req, res, next) => {
      res.setHeader('Permissions-Policy', 'camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()');
      next();
    },
  ];
}

/**
 * Marks a response that shows a secret once (a new API key, a webhook's
 * signing secret, a one-time link, a customer's call token): no cache keeps
 * it, and it is sent uncompressed, since a secret compressed together with
 * text an attacker can choose leaks through the response's size (BREACH).
 * CSRF tokens need no such care: they are masked anew in every response.
 */
export function secretResponse(res: Response): void {
  res.setHeader('Cache-Control', 'no-store');
  res.locals.uncompressed = true;
}

/** compression's filter: its own (compressible types), except responses marked by secretResponse. */
export function compressionFilter(req: Request, res: Response): boolean {
  if (res.locals?.uncompressed === true) return false;
  return compression.filter(req, res);
}

/** Response compression honouring secretResponse. */
export function responseCompression(): RequestHandler {
  return compression({ filter: compressionFilter });
}
