import type { IncomingHttpHeaders } from 'node:http';
import type { TrustProxy } from '../ops/addresses';

function first(value: string | string[] | undefined): string | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  return raw?.split(',')[0]?.trim() || undefined;
}

/** `host[:port]` as a URL of the given scheme would have it (default ports dropped, lower case), or undefined if malformed. */
function normalHost(scheme: string, host: string): string | undefined {
  try {
    return new URL(`${scheme}//${host}`).host;
  } catch {
    return undefined;
  }
}

/**
 * Whether a signalling connection's `Origin` (if the browser sent one) is
 * the appliance's own: the host of the configured public URL, or the host
 * the request was addressed to (the Host header, or X-Forwarded-Host when
 * the connecting peer is a trusted proxy). Compared by host and port, so
 * TLS ending at a proxy does not matter. No Origin (a client that is not
 * a browser, which carries no one's cookie) is allowed; a malformed one or
 * `null` is not. Stops cross-site WebSocket hijacking with a clerk's cookie.
 */
export function originAllowed(
  headers: IncomingHttpHeaders,
  peerAddress: string | undefined,
  options: { trustProxy?: TrustProxy; publicUrl?: string },
): boolean {
  const origin = headers.origin;
  if (origin === undefined) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (options.publicUrl && normalHost(url.protocol, new URL(options.publicUrl).host) === url.host) return true;
  const proxied = peerAddress !== undefined && options.trustProxy?.(peerAddress, 0) === true;
  const host = (proxied ? first(headers['x-forwarded-host']) : undefined) ?? first(headers.host);
  return host !== undefined && normalHost(url.protocol, host) === url.host;
}
