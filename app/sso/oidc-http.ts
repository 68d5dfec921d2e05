import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';

/**
 * The fetch the OIDC client uses towards a provider (discovery, JWKS, token
 * endpoint): node's http(s) so that an organisation's CA can be trusted
 * beside the public ones, with a time limit, a size limit on answers and no
 * redirects followed. Only what openid-client and jose use of fetch is
 * supported (method, headers, a string / URLSearchParams body, signal).
 */
export type ProviderFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export const PROVIDER_TIMEOUT_MS = 10_000;
const MAX_BODY_BYTES = 1024 * 1024;

export function providerFetch(options: { caPem?: string; timeoutMs?: number } = {}): ProviderFetch {
  const ca = options.caPem ? [...tls.rootCertificates, options.caPem] : undefined;
  const timeoutMs = options.timeoutMs ?? PROVIDER_TIMEOUT_MS;
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    let body: Buffer | undefined;
    if (init.body !== undefined && init.body !== null) {
      if (typeof init.body === 'string') body = Buffer.from(init.body);
      else if (init.body instanceof URLSearchParams) {
        body = Buffer.from(init.body.toString());
        if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
      } else if (init.body instanceof Uint8Array) body = Buffer.from(init.body);
      else throw new TypeError('unsupported request body');
    }
    if (body) headers.set('content-length', String(body.length));
    const outgoing: Record<string, string> = {};
    headers.forEach((value, key) => {
      outgoing[key] = value;
    });
    const transport = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
    if (!transport) throw new TypeError(`unsupported protocol ${url.protocol}`);
    return new Promise<Response>((resolve, reject) => {
      const req = transport.request(url, { method, headers: outgoing, timeout: timeoutMs, ...(ca && url.protocol === 'https:' ? { ca } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) {
            req.destroy(new Error('provider answer too large'));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [key, value] of Object.entries(res.headers)) {
            if (value === undefined) continue;
            for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(key, v);
          }
          const status = res.statusCode ?? 502;
          const noBody = status === 204 || status === 304 || method === 'HEAD';
          const response = new Response(noBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage, headers: responseHeaders });
          Object.defineProperty(response, 'url', { value: url.href });
          resolve(response);
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`provider did not answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      const signal = init.signal;
      if (signal) {
        if (signal.aborted) req.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        else signal.addEventListener('abort', () => req.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted')), { once: true });
      }
      req.end(body);
    });
  };
}
