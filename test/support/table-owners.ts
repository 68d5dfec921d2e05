/**
 * Which module owns each table (issue 15, point 3): the one file under app/
 * that builds queries on it. Every other module calls the owner's functions
 * (passing its transaction when the work spans tables).
 * test/table-owners.test.ts checks the sources against this map.
 */
export const tableOwners: Record<string, string> = {
  // Written by its migration, read only by the backup (its instance id goes into the manifest).
  appliance_info: 'app/backup/create.ts',
  organisations: 'app/organisation/store.ts',
  users: 'app/staff/store.ts',
  sso_providers: 'app/sso/store.ts',
  sso_used_values: 'app/sso/seen-once.ts',
  sso_role_mappings: 'app/sso/store.ts',
  sessions: 'app/access/session-store.ts',
  one_time_tokens: 'app/access/one-time-tokens.ts',
  login_throttles: 'app/sign-in/throttle.ts',
  // Appliance-wide: one row per appliance node sharing the database (issue 19).
  nodes: 'app/nodes/store.ts',
  audit_events: 'app/audit/store.ts',
  audit_checkpoints: 'app/audit/checkpoints.ts',
  audit_exports: 'app/compliance/audit-export.ts',
  audit_personal_keys: 'app/audit/personal.ts',
  calls: 'app/calls/store.ts',
  // Insights (issue 20): the daily figures and their monthly sums, and the clerks' available time until the job folds it in.
  insight_days: 'app/insights/store.ts',
  insight_products: 'app/insights/store.ts',
  insight_months: 'app/insights/store.ts',
  insight_product_months: 'app/insights/store.ts',
  insight_team_months: 'app/insights/store.ts',
  availability_spans: 'app/staff/store.ts',
  api_keys: 'app/api-keys/service.ts',
  api_request_log: 'app/retention/api-requests.ts',
  queue_entries: 'app/queue/store.ts',
  webhook_endpoints: 'app/webhooks/store.ts',
  webhook_deliveries: 'app/webhooks/store.ts',
  products: 'app/catalog/service.ts',
  product_images: 'app/catalog/images.ts',
  call_items: 'app/curation/service.ts',
  call_messages: 'app/curation/service.ts',
  call_notes: 'app/curation/service.ts',
  recordings: 'app/recordings/service.ts',
  recording_tracks: 'app/recordings/service.ts',
  recording_consents: 'app/recordings/service.ts',
  legal_holds: 'app/holds/store.ts',
  subject_requests: 'app/requests/service.ts',
  subject_request_notes: 'app/requests/service.ts',
  privacy_texts: 'app/privacy-texts/service.ts',
};

/**
 * Files that name tables without owning them, on purpose. Each treats every
 * table alike (or the schema as a whole), so no owner could hold the query.
 */
export const genericFiles: Record<string, string> = {
  'app/db/migrations/': 'migrations create and change the tables themselves',
  'app/db/roles.ts': 'grants the app role its rights on every table',
  'app/access/scoped-service.ts': 'the cross-organisation check reads `organisation_id` of an id in the table its caller names (no literal table of its own)',
  'app/backup/': 'the backup reads every table from one snapshot (and restore checks the audit heads it wrote) before and apart from the running app',
};
