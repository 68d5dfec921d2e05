import assert from 'node:assert/strict';
import type { Knex } from 'knex';
import { io, type Socket } from 'socket.io-client';
import request from 'supertest';
import { CallService } from '../../app/calls/service';
import { csrfFrom, PASSWORD } from './accounts';

/** A signalling client without a browser, for tests of the protocol. */

export type Ack = { ok: true; data: Record<string, unknown> } | { ok: false; error: { code: string; message: string } };

/** Connects to `/signal` as a clerk (auth `{ callId }` plus the session cookie) or a customer (`{ token }`). */
export function connect(url: string, auth: Record<string, string>, cookie?: string): Promise<Socket> {
  const socket = io(url, { path: '/signal', auth, transports: ['websocket'], reconnection: false, extraHeaders: cookie ? { Cookie: cookie } : {} });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

export function ask(socket: Socket, type: string, payload: unknown = {}): Promise<Ack> {
  return (socket.timeout(15000).emitWithAck(type, payload) as Promise<Ack>).catch((err: Error) => {
    throw new Error(`${type}: ${err.message}`);
  });
}

/** The answer's data; throws when the request was refused. */
export async function ok<T = Record<string, unknown>>(socket: Socket, type: string, payload: unknown = {}): Promise<T> {
  const ack = await ask(socket, type, payload);
  if (!ack.ok) throw new Error(`${type} refused: ${ack.error.code} ${ack.error.message}`);
  return ack.data as T;
}

/** The refusal's code; fails when the request was accepted. */
export async function refusedCode(socket: Socket, type: string, payload: unknown): Promise<string> {
  const ack = await ask(socket, type, payload);
  assert.equal(ack.ok, false, `${type} should be refused`);
  return (ack as { error: { code: string } }).error.code;
}

/** Signs a staff user in at a listening server through the real form; answers their session cookie (`name=value`). */
export async function sessionCookie(url: string, user: { email: string }, password = PASSWORD): Promise<string> {
  const agent = request.agent(url);
  const login = await agent.get('/login');
  const res = await agent.post('/login').type('form').send({ _csrf: csrfFrom(login.text), email: user.email, password }).expect(303);
  return String(res.headers['set-cookie']).split(';')[0]!;
}

/** A new call of `clerk` with both sides connected to signalling (not yet joined to the media). */
export async function openCall(knex: Knex, url: string, clerk: { id: string; organisationId: string }, cookie: string): Promise<{ callId: string; token: string; clerkSocket: Socket; customerSocket: Socket }> {
  const caller = { user: { id: clerk.id, organisationId: clerk.organisationId } as never, ip: '127.0.0.1', userAgent: 'test', sessionId: 'x' };
  const { call, token } = await new CallService(knex).start(caller, 1);
  const clerkSocket = await connect(url, { callId: call.id }, cookie);
  const customerSocket = await connect(url, { token });
  return { callId: call.id, token, clerkSocket, customerSocket };
}

/** Joins the call's media room as a device would (the router's own capabilities), without producing. */
export async function join(socket: Socket): Promise<void> {
  const { rtpCapabilities } = await ok<{ rtpCapabilities: Record<string, unknown> }>(socket, 'getRouterRtpCapabilities');
  await ok(socket, 'join', { rtpCapabilities });
}
