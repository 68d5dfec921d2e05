import type { Call } from '../calls/service';
import type { ClerkListing } from '../staff/service';

/** A call as the REST API shows it (stable field names, ISO times, no token or hash). */
export function callResource(call: Call) {
  return {
    id: call.id,
    status: call.status,
    clerkId: call.clerkId,
    reference: call.reference,
    scheduledAt: call.scheduledAt?.toISOString() ?? null,
    createdAt: call.createdAt.toISOString(),
    startedAt: call.startedAt?.toISOString() ?? null,
    endedAt: call.endedAt?.toISOString() ?? null,
    endReason: call.endReason,
    link: {
      expiresAt: call.guestTokenExpiresAt?.toISOString() ?? null,
      revoked: call.linkRevokedAt !== null,
    },
  };
}

/** A clerk as the REST API shows it: only what creating a call link needs (no e-mail address, no sign-in data). */
export function clerkResource(clerk: ClerkListing) {
  return { id: clerk.id, name: clerk.name };
}
