import type { ZodType } from 'zod';
import type { Room } from '../../media';
import { CallRefusal } from './refusal';
import { requests, type RequestPayload, type RequestType, type ResponseData, type ServerEvents } from './protocol';
import type { Participant } from './service';
import type { SocketIdentity } from './signalling-auth';

/** Who may send a request: the participant roles of a call. */
export type CallRole = Participant['role'];

/** Sends a server event to a call's participants (all of them, or all but one peer). */
export type EmitToCall = <E extends keyof ServerEvents>(callId: string, event: E, data: ServerEvents[E], exceptPeerId?: string) => void;

/** What a request's handler gets: one argument. */
export interface CallContext<P> {
  /** The participant asking, as the connection was authenticated. */
  who: SocketIdentity;
  /** Their peer in the call's media room. */
  peerId: string;
  room: Room;
  /** The payload, already checked against the request's schema. */
  payload: P;
  /** Sends an event to this call's participants (all but `exceptPeerId`, when given). */
  emit<E extends keyof ServerEvents>(event: E, data: ServerEvents[E], exceptPeerId?: string): void;
}

/**
 * One request a module serves: its payload schema, the roles that may send
 * it (a list, or by the payload: only the clerk shares a screen), and the
 * handler. The hub checks the schema and the roles before the handler runs;
 * a handler refuses with `CallRefusal`.
 */
export interface CallRequest<K extends RequestType = RequestType> {
  schema: ZodType<RequestPayload<K>>;
  roles: readonly CallRole[] | ((payload: RequestPayload<K>) => readonly CallRole[]);
  handle(ctx: CallContext<RequestPayload<K>>): Promise<ResponseData[K] | Record<string, never>>;
}

export type CallRequests = { readonly [K in RequestType]?: CallRequest<K> };

/**
 * An in-call feature, as the signalling hub sees it: the requests it
 * serves, and what it wants to hear of the calls. The hub is handed the
 * list of modules when it is built (app/call-modules.ts) and imports none.
 */
export interface CallModule {
  /** For logs and for the check that no two modules serve one request. */
  name: string;
  requests: CallRequests;
  /** The hub starts: how to reach a call's participants outside a request (a recorder that failed). */
  start?(emitToCall: EmitToCall): void;
  /** Before a participant joins the media; a CallRefusal refuses the join (`consent_required`). */
  beforeJoin?(who: SocketIdentity): Promise<void>;
  /** After a participant joined (not awaited by the join; a failure is logged). */
  afterJoin?(who: SocketIdentity, room: Room): Promise<void>;
  /** The call's media room closes (the last participant left, or the call ended). */
  callEnded?(callId: string): Promise<void>;
  /** The hub closes (shutdown). */
  close?(): Promise<void>;
}

/**
 * Declares a module's requests by their names in the protocol: each gets
 * the protocol's payload schema (protocol.ts, shared with the client), so
 * the module only says who may send it and what it does.
 */
export function callRequests<K extends RequestType>(specs: { [N in K]: Omit<CallRequest<N>, 'schema'> }): CallRequests {
  const declared: Record<string, CallRequest> = {};
  for (const name of Object.keys(specs) as K[]) {
    declared[name] = { schema: requests[name] as unknown as ZodType<never>, ...(specs[name] as Omit<CallRequest, 'schema'>) } as CallRequest;
  }
  return declared as CallRequests;
}

/** Everyone in a call. */
export const ANYONE: readonly CallRole[] = ['clerk', 'customer'];
export const CLERK: readonly CallRole[] = ['clerk'];
export const CUSTOMER: readonly CallRole[] = ['customer'];

/**
 * The clerk asking a request declared for `CLERK` (the hub let no one else
 * through): their user, typed as such. Never refuses for such a request.
 */
export function clerkOf(who: SocketIdentity): Extract<Participant, { role: 'clerk' }> {
  if (who.participant.role !== 'clerk') throw new CallRefusal('forbidden');
  return who.participant;
}
