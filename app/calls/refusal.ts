import type { MediaErrorCode } from '../../media';
import { isDatabaseUnavailable } from '../db/unavailable';

/**
 * The stable codes a call participant can be refused with, on the wire:
 * as an ack's `error.code`, or as a refused connection's `connect_error`
 * message (see protocol.ts).
 */
export type RefusalCode =
  // Connecting
  | 'unauthenticated'
  | 'token_invalid'
  | 'call_not_found'
  // Another node holds the call's media room: connect again naming it (the error's data says which)
  | 'wrong_node'
  // No node takes new calls now (all gone, draining or full): try again
  | 'no_node_available'
  // Requests
  | 'invalid_message'
  | 'too_large'
  | 'rate_limited'
  | 'not_joined'
  | 'not_found'
  | 'forbidden'
  | 'call_ended'
  | 'media_unavailable'
  | 'cannot_consume'
  | 'limit_reached'
  | 'consent_required'
  | 'disk_full'
  | 'recording_unavailable'
  // The database is out of reach for now (restarting, a lost connection): try again
  | 'database_unavailable'
  // The media layer's own (media/errors.ts), passed on by the media module
  | MediaErrorCode;

/**
 * An expected refusal of a call request or connection, with a stable code
 * that is sent to the participant as it is (its message is the code: no
 * detail of the server goes out). Every in-call feature throws this one
 * class; anything else a handler throws is an `internal_error`.
 */
export class CallRefusal extends Error {
  constructor(
    readonly code: RefusalCode,
    options?: ErrorOptions,
  ) {
    super(code, options);
    this.name = 'CallRefusal';
  }
}

/** The code a refused connection (`connect_error`) or request is answered with for `err`; null: an unexpected failure (`internal_error`). */
export function refusalCodeOf(err: unknown): RefusalCode | null {
  if (err instanceof CallRefusal) return err.code;
  return isDatabaseUnavailable(err) ? 'database_unavailable' : null;
}

/** The answer to a request that failed unexpectedly: details go only to the log. */
export const INTERNAL_ERROR = { ok: false, error: { code: 'internal_error', message: 'internal error' } } as const;

export type ErrorReply = { ok: false; error: { code: string; message: string } };

/** A refusal's answer to the participant: `{ ok: false, error: { code, message } }` (message defaults to the code). */
export function refusalReply(code: string, message: string = code): ErrorReply {
  return { ok: false, error: { code, message } };
}

/**
 * What a failed request answers: a CallRefusal its code, a database out of
 * reach `database_unavailable` (`expected` true: the outage is logged once
 * by the database watchdog, not per request), anything else
 * `internal_error` (`expected` false: the caller logs it).
 */
export function errorReply(err: unknown): { reply: ErrorReply; expected: boolean } {
  if (err instanceof CallRefusal) return { reply: refusalReply(err.code), expected: true };
  if (isDatabaseUnavailable(err)) return { reply: refusalReply('database_unavailable'), expected: true };
  return { reply: INTERNAL_ERROR, expected: false };
}
