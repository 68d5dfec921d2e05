import assert from 'node:assert/strict';
import { io, type Socket } from 'socket.io-client';

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
