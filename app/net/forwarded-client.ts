import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * The client address of a request another node forwarded (issue 19:
 * signalling goes to the node holding the call's media room). The
 * forwarding node names the client it saw in `x-vclerk-client`, signed with
 * the secret every node shares (the session secret) and a timestamp; the
 * receiving node takes that address for the request only when the signature
 * holds and is fresh, so that logins and calls stay logged with the
 * customer's and clerk's own address, and nobody else can claim one.
 */

export const FORWARDED_BY = 'x-vclerk-forwarded-by';
const CLIENT = 'x-vclerk-client';
const SIGNATURE = 'x-vclerk-client-signature';
const FRESH_MS = 60_000;
const verified = new WeakMap<IncomingMessage, string>();

function mac(secret: string, by: string, client: string, at: string): string {
  return crypto.createHmac('sha256', secret).update(`vclerk-forward\n${by}\n${client}\n${at}`).digest('base64url');
}

/** The headers a forwarding node adds: who forwards, the client it saw, signed. */
export function forwardingHeaders(secret: string, by: string, client: string, now = Date.now()): Record<string, string> {
  const at = String(now);
  return { [FORWARDED_BY]: by, [CLIENT]: client, [SIGNATURE]: `${at}.${mac(secret, by, client, at)}` };
}

/**
 * On the receiving node: checks the forwarding headers and, when they hold,
 * remembers the client's address for this request; removes them either way
 * (nothing further down reads them unchecked). Answers whether they held.
 */
export function acceptForwarded(req: IncomingMessage, secret: string, now = Date.now()): boolean {
  const by = req.headers[FORWARDED_BY];
  const client = req.headers[CLIENT];
  const signature = req.headers[SIGNATURE];
  delete req.headers[CLIENT];
  delete req.headers[SIGNATURE];
  if (typeof by !== 'string' || typeof client !== 'string' || typeof signature !== 'string') return false;
  const [at, given] = signature.split('.', 2);
  if (!at || !given || !/^\d{1,15}$/.test(at) || Math.abs(now - Number(at)) > FRESH_MS) return false;
  const expected = Buffer.from(mac(secret, by, client, at));
  const actual = Buffer.from(given);
  if (expected.length !== actual.length || !crypto.timingSafeEqual(expected, actual)) return false;
  verified.set(req, client);
  return true;
}

/** The client address another node vouched for on this request, if any. */
export function forwardedClient(req: IncomingMessage): string | undefined {
  return verified.get(req);
}
