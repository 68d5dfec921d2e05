/**
 * Whether an error means that the database cannot be reached right now
 * (refused or lost connections, a server shutting down or starting up, no
 * connection free in time), as opposed to a query that is wrong. Such a
 * failure is the appliance's, but passing: HTTP answers it with 503
 * `database_unavailable` (http/error-handler.ts) and signalling with the
 * same code (calls/refusal.ts), instead of a 500 `internal_error`. Looks
 * through `cause` chains and AggregateErrors (pg's connect errors are
 * AggregateErrors when localhost has two addresses).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  return someError(err, (e) => {
    const code = typeof e.code === 'string' ? e.code : '';
    if (NETWORK_CODES.has(code)) return true;
    // SQLSTATE class 08 (connection exception); 57P01-57P03 admin or crash shutdown, cannot connect now; 53300 too many connections.
    if (/^08[0-9A-Z]{3}$/.test(code) || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
    if (e.name === 'KnexTimeoutError') return true;
    const message = typeof e.message === 'string' ? e.message : '';
    return LOST_CONNECTION.some((pattern) => pattern.test(message));
  });
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH']);

/** What node-postgres and knex say about a connection that broke (they give these no code). */
const LOST_CONNECTION = [
  /Connection terminated/,
  /Client has encountered a connection error and is not queryable/,
  /Client was closed and is not queryable/,
  /Connection ended unexpectedly/,
  /Knex: Timeout acquiring a connection/,
];

interface ErrorLike {
  code?: unknown;
  name?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

function someError(err: unknown, test: (e: ErrorLike) => boolean, depth = 0): boolean {
  if (depth > 5 || typeof err !== 'object' || err === null) return false;
  const e = err as ErrorLike;
  if (test(e)) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => someError(inner, test, depth + 1))) return true;
  return someError(e.cause, test, depth + 1);
}
