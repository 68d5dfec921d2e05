import type { RequestHandler } from 'express';
import { TokenBucket } from '../calls/rate-limit';
import { TooManyRequestsError } from '../core/errors';

/**
 * Per-key rate limit for the REST API: `rate` requests per second on
 * average, bursts up to `burst`. Runs after apiKeyAuth (it needs req.apiKey).
 */
export function perKeyRateLimit(rate = 10, burst = 50): RequestHandler {
  const buckets = new Map<string, TokenBucket>();
  return (req, res, next) => {
    const id = req.apiKey?.id;
    if (!id) return next();
    let bucket = buckets.get(id);
    if (!bucket) buckets.set(id, (bucket = new TokenBucket(rate, burst)));
    if (bucket.take()) return next();
    res.setHeader('Retry-After', '1');
    next(new TooManyRequestsError());
  };
}
