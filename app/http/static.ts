import express, { type RequestHandler } from 'express';
import { publicDir } from '../core/paths';
import { vendorFiles } from './views';

const ONE_YEAR = 365 * 24 * 3600;

/**
 * Static assets under /static. URLs made by `asset()` carry a content hash
 * (`?v=`), so those responses are cacheable for a year; a request without
 * it gets a short cache lifetime.
 */
export function staticAssets(): RequestHandler {
  const router = express.Router();
  const setHeaders = (res: express.Response) => {
    const url = (res.req as express.Request).originalUrl;
    res.setHeader('Cache-Control', url.includes('?v=') ? `public, max-age=${ONE_YEAR}, immutable` : 'public, max-age=300');
  };
  for (const [name, file] of Object.entries(vendorFiles)) {
    router.get(`/vendor/${name}`, (_req, res, next) => {
      setHeaders(res);
      res.sendFile(file, { cacheControl: false }, (err) => err && next(err));
    });
  }
  router.use(express.static(publicDir, { index: false, dotfiles: 'ignore', cacheControl: false, setHeaders, fallthrough: true }));
  return router;
}
