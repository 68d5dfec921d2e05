/** Every audited action, in one list: compliance filters offer these. */
export const auditActions = [
  'setup.completed',
  'auth.login_succeeded',
  'auth.login_failed',
  'auth.logout',
  'auth.lockout',
  'user.invited',
  'user.activated',
  'user.role_changed',
  'user.deactivated',
  'user.reactivated',
  'user.unlocked',
  'user.language_changed',
  'password.changed',
  'password.reset_issued',
  'password.reset_completed',
  'organisation.created',
  'organisation.updated',
  'organisation.branding_changed',
  'organisation.auto_routing_changed',
  'organisation.recording_policy_changed',
  'call.started',
  'call.link_revoked',
  'call.joined',
  'call.left',
  'call.ended',
  'call.interrupted',
  'recording.consent',
  'recording.started',
  'recording.stopped',
  'recording.finalised',
  'recording.failed',
  'recording.played',
  'recording.downloaded',
  'api_key.created',
  'api_key.revoked',
  'api.request',
  'api.refused',
  'catalog.product_created',
  'catalog.product_updated',
  'catalog.product_deactivated',
  'catalog.product_activated',
  'catalog.import_applied',
  'catalog.image_added',
  'catalog.image_removed',
  'catalog.image_made_first',
  'webhook.created',
  'webhook.enabled',
  'webhook.disabled',
  'webhook.secret_rotated',
  'webhook.deleted',
  'security.csrf_rejected',
  'security.cross_organisation_denied',
  'security.role_denied',
  'security.signalling_refused',
  'security.recording_access_denied',
] as const;

export type AuditAction = (typeof auditActions)[number];

export type Actor =
  | { type: 'user'; id: string; label: string; organisationId: string }
  | { type: 'api_key'; id: string; label: string; organisationId: string }
  | { type: 'guest'; id?: string; label?: string }
  | { type: 'system'; label?: string };

export const SYSTEM: Actor = { type: 'system', label: 'VClerk' };
