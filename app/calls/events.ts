import { EventEmitter } from 'node:events';

export interface CallEventMap {
  /** A call's customer link was revoked: its connected customer must go at once. */
  linkRevoked: [callId: string];
}

/**
 * In-process notifications from the call service to the signalling hub
 * (both live in the one appliance process): the service says what changed
 * after its transaction committed, the hub acts on its live connections.
 */
export const callEvents = new EventEmitter<CallEventMap>();
// Every hub in the process listens (tests start several); not a leak.
callEvents.setMaxListeners(0);
