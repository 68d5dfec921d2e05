import type { IncomingMessage } from 'node:http';
import type { SessionData } from 'express-session';
import type { Knex } from 'knex';
import type { Socket } from 'socket.io';
import { z } from 'zod';
import { refusalsFor } from '../audit/refusals';
import { resolveSessionUser } from '../staff/session-user';
import { auditForeignProbe, proberOf } from '../access/scoped-service';
import { limiterFor } from '../http/limiter';
import { clientAddress, type TrustProxy } from '../net/addresses';
import { forwardedClient } from '../net/forwarded-client';
import { CallRefusal } from './refusal';
import type { CallService, Participant } from './service';

/** What the signalling server knows about a connected socket. */
export interface SocketIdentity {
  callId: string;
  organisationId: string;
  participant: Participant;
  /** One peer per person and call: a clerk by user id, the customer by role. */
  identity: string;
  ip: string | null;
  userAgent: string | null;
}

const auth = z.union([z.object({ token: z.string().max(200) }).strict(), z.object({ callId: z.uuid() }).strict()]);

/** The client's IP by the same rules as the HTTP app's `req.ip`: X-Forwarded-For counts only from trusted proxies. */
export function clientIp(socket: Socket, trustProxy: TrustProxy | undefined): string | null {
  // Forwarded by the node that took the connection: the client it saw, signed (app/net/forwarded-client.ts).
  const vouched = forwardedClient(socket.request);
  if (vouched) return vouched;
  const peer = socket.handshake.address;
  if (!trustProxy) return peer || null;
  return clientAddress(peer, socket.handshake.headers['x-forwarded-for'], trustProxy);
}

/** The customer's neutral label for the call: no name is asked or kept. */
function customerLabel(callId: string): string {
  return `Customer ${callId.replace(/-/g, '').slice(0, 4).toUpperCase()}`;
}

/**
 * Decides who a new signalling connection is: a clerk by the session
 * cookie (and the call must be theirs), or a customer by the call link's
 * token. Refusals of a token are audited with the client's IP (the first
 * of a source at once, further ones aggregated per window), and limited per
 * client IP before any database work (`rate_limited`).
 */
export async function identify(socket: Socket, deps: { knex: Knex; calls: CallService; absoluteHours: number; trustProxy?: TrustProxy }): Promise<SocketIdentity> {
  const parsed = auth.safeParse(socket.handshake.auth ?? {});
  if (!parsed.success) throw new CallRefusal('unauthenticated');
  const ip = clientIp(socket, deps.trustProxy);
  const userAgent = socket.handshake.headers['user-agent'] ?? null;

  if ('token' in parsed.data) {
    // Per client IP, before any database work; given back once the token is accepted.
    const slot = limiterFor(deps.knex).take('signalling', ip);
    if (!slot.ok) {
      void refusalsFor(deps.knex).note({ organisationId: null, actor: { type: 'guest' }, action: 'security.rate_limited', ip, userAgent, details: { kind: 'signalling', reason: 'signalling' } }, { aggregateOnly: true });
      throw new CallRefusal('rate_limited');
    }
    const found = await deps.calls.byGuestToken(parsed.data.token);
    if ('error' in found) {
      await refusalsFor(deps.knex).note({ organisationId: null, actor: { type: 'guest' }, action: 'security.signalling_refused', ip, userAgent, details: { reason: found.error } });
      throw new CallRefusal(found.error);
    }
    slot.refund();
    const { call } = found;
    return { callId: call.id, organisationId: call.organisationId, participant: { role: 'customer', label: customerLabel(call.id) }, identity: 'customer', ip, userAgent };
  }

  const session = (socket.request as IncomingMessage & { session?: Partial<SessionData> }).session;
  const user = await resolveSessionUser(deps.knex, session, deps.absoluteHours);
  if (!user) throw new CallRefusal('unauthenticated');
  const call = await deps.calls.byId(parsed.data.callId);
  if (call && call.organisationId !== user.organisationId) {
    // Another organisation's call: audited in both organisations (auth/scoped-service.ts).
    await auditForeignProbe(deps.knex, proberOf({ user, ip, userAgent }), 'calls', 'call', call.id);
  }
  if (!call || call.organisationId !== user.organisationId || call.clerkId !== user.id) throw new CallRefusal('call_not_found');
  if (call.status === 'ended') throw new CallRefusal('call_ended');
  return {
    callId: call.id,
    organisationId: call.organisationId,
    participant: { role: 'clerk', userId: user.id, label: user.name, organisationId: user.organisationId },
    identity: `clerk:${user.id}`,
    ip,
    userAgent,
  };
}
