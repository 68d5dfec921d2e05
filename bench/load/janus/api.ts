/**
 * A minimal client of the Janus HTTP API (plain HTTP on 127.0.0.1): one
 * session, one videoroom handle, and the videoroom's synchronous requests
 * the load bench needs (create a room, add a remote publisher, forward its
 * streams as plain RTP). Every request has a timeout; errors carry Janus's
 * code and reason.
 */
import { randomBytes } from 'node:crypto';

const REQUEST_TIMEOUT_MS = 10_000;

export class JanusApiError extends Error {
  constructor(readonly request: string, readonly code: number | undefined, reason: string) {
    super(`janus ${request}: ${reason}${code !== undefined ? ` (code ${code})` : ''}`);
    this.name = 'JanusApiError';
  }
}

interface JanusReply {
  janus?: string;
  data?: { id?: number };
  error?: { code?: number; reason?: string };
  plugindata?: { plugin?: string; data?: Record<string, unknown> };
  [key: string]: unknown;
}

export class JanusApi {
  private session?: number;
  private handle?: number;

  constructor(readonly baseUrl: string) {}

  private async post(path: string, body: Record<string, unknown>): Promise<JanusReply> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, transaction: randomBytes(6).toString('hex') }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const reply = (await res.json()) as JanusReply;
    if (reply.janus === 'error') throw new JanusApiError(String(body.janus), reply.error?.code, reply.error?.reason ?? 'error');
    return reply;
  }

  /** GET /janus/info: version and loaded plugins/transports. */
  async info(): Promise<{ version?: number; version_string?: string; plugins?: Record<string, unknown> }> {
    const res = await fetch(`${this.baseUrl}/info`, { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) throw new Error(`janus info: HTTP ${res.status}`);
    return (await res.json()) as { version?: number; version_string?: string; plugins?: Record<string, unknown> };
  }

  /** Creates the control session and attaches it to the videoroom plugin. */
  async open(): Promise<void> {
    const created = await this.post('', { janus: 'create' });
    this.session = created.data?.id;
    if (!this.session) throw new JanusApiError('create', undefined, 'no session id in the reply');
    const attached = await this.post(`/${this.session}`, { janus: 'attach', plugin: 'janus.plugin.videoroom' });
    this.handle = attached.data?.id;
    if (!this.handle) throw new JanusApiError('attach', undefined, 'no handle id in the reply');
  }

  /** A synchronous videoroom request; returns the plugin's reply, throws on its errors. */
  async videoroom(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!this.session || !this.handle) throw new Error('janus api: open() first');
    const reply = await this.post(`/${this.session}/${this.handle}`, { janus: 'message', body });
    const data = reply.plugindata?.data;
    if (!data) throw new JanusApiError(String(body.request), undefined, `unexpected reply ${JSON.stringify(reply).slice(0, 300)}`);
    if (data.error_code !== undefined || data.error !== undefined) {
      throw new JanusApiError(String(body.request), Number(data.error_code), String(data.error ?? 'error'));
    }
    return data;
  }

  async close(): Promise<void> {
    if (!this.session) return;
    const session = this.session;
    this.session = undefined;
    this.handle = undefined;
    await this.post(`/${session}`, { janus: 'destroy' }).catch(() => undefined);
  }
}
