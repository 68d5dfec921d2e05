/**
 * Every audited action, in one list: compliance filters offer these, so
 * each must be written somewhere in app/ (test/audit-actions.test.ts checks).
 * Accepted API requests are not audited: they go to `api_request_log`.
 */
export const auditActions = [
  'setup.completed',
  'auth.login_succeeded',
  'auth.login_failed',
  'auth.logout',
  'auth.lockout',
  'auth.break_glass_used',
  'sso.login_refused',
  'sso.user_provisioned',
  'sso.role_mapped',
  'sso.deprovisioned',
  'sso.settings_changed',
  'sso.tested',
  'user.invited',
  'user.activated',
  'user.role_changed',
  'user.deactivated',
  'user.reactivated',
  'user.unlocked',
  'user.break_glass_changed',
  'user.language_changed',
  'password.changed',
  'password.reset_issued',
  'password.reset_completed',
  'organisation.created',
  'organisation.updated',
  'organisation.branding_changed',
  'organisation.auto_routing_changed',
  'organisation.recording_policy_changed',
  'organisation.password_sign_in_changed',
  'call.started',
  'call.link_revoked',
  'call.link_viewed',
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
  'security.rate_limited',
  'security.audit_chain_broken',
  'retention.settings_changed',
  'retention.run_requested',
  'retention.deleted',
  'legal_hold.placed',
  'legal_hold.lifted',
  'subject_request.registered',
  'subject_request.status_changed',
  'subject_request.executed',
  'subject_request.downloaded',
  'organisation.privacy_text_saved',
  'organisation.closed',
  'organisation.purged',
  'audit.exported',
  'audit.export_downloaded',
] as const;

export type AuditAction = (typeof auditActions)[number];

export type Actor =
  | { type: 'user'; id: string; label: string; organisationId: string }
  | { type: 'api_key'; id: string; label: string; organisationId: string }
  /** A user or key of another organisation in this organisation's trail: the id only, no name or e-mail (auth/scoped-service.ts). */
  | { type: 'user' | 'api_key'; id: string; label?: undefined; organisationId: string }
  | { type: 'guest'; id?: string; label?: string }
  | { type: 'system'; label?: string };

export const SYSTEM: Actor = { type: 'system', label: 'VClerk' };
