/**
 * The rows of every table as PostgreSQL hands them to knex (node-postgres):
 * bigint as a string, timestamps as Date, jsonb parsed, bytea as Buffer,
 * arrays as arrays. Declared to knex once, at the end of this file
 * (`knex/types/tables`), so every `db('table')` query is typed by the
 * table's name: what `select`, `first` and `returning` give back, and which
 * columns `where`, `insert` and `update` take. No mapper casts a column.
 *
 * The columns follow the migrations (test/fixtures/schema-snapshot.json is
 * the schema they produce); a column that may be NULL is `| null`, and a
 * column a CHECK constraint limits to a few values has them as its type.
 * A column written in another type than it is read in (a bigint written as
 * a number, jsonb written as JSON text) is listed in `WrittenAs`.
 */
import type { SessionData } from 'express-session';
import type { Knex } from 'knex';

/** A jsonb value as read (parsed by the driver). */
export type Json = Record<string, unknown>;

/** `api_keys` */
export interface ApiKeyRow {
  created_at: Date;
  created_by: string | null;
  id: string;
  key_hash: string;
  last_used_at: Date | null;
  last_used_ip: string | null;
  name: string;
  organisation_id: string;
  origin: 'generated' | 'provided';
  prefix: string;
  revoked_at: Date | null;
  revoked_by: string | null;
  scopes: string[];
}

/** `api_request_log` */
export interface ApiRequestLogRow {
  aborted: boolean;
  api_key_id: string | null;
  id: string; // bigint
  ip: string | null;
  key_prefix: string;
  method: string;
  occurred_at: Date;
  organisation_id: string;
  path: string;
  status: number;
  user_agent: string | null;
}

/** `appliance_info` */
export interface ApplianceInfoRow {
  created_at: Date;
  instance_id: string;
  singleton: boolean;
}

/** `audit_checkpoints` */
export interface AuditCheckpointRow {
  chain: string;
  created_at: Date;
  hash: string;
  id: string; // bigint
  key_id: string;
  seq: string; // bigint
  signature: string;
}

/** `audit_events` */
export interface AuditEventRow {
  action: string;
  actor_id: string | null;
  actor_label: string | null;
  actor_type: string;
  chain: string;
  details: Json;
  hash: string;
  id: string; // bigint
  ip: string | null;
  occurred_at: Date;
  organisation_id: string | null;
  prev_hash: string;
  seq: string; // bigint
  target_id: string | null;
  target_type: string | null;
  user_agent: string | null;
}

/** `audit_exports` */
export interface AuditExportRow {
  bytes: string; // bigint
  complete_chain: boolean;
  created_at: Date;
  created_by: string | null;
  created_by_label: string | null;
  expires_at: Date;
  file_name: string;
  file_removed_at: Date | null;
  filters: Json;
  first_hash: string | null;
  first_seq: string | null; // bigint
  format: 'ndjson' | 'csv';
  id: string;
  key_fingerprint: string;
  last_hash: string | null;
  last_seq: string | null; // bigint
  manifest: string;
  organisation_id: string;
  row_count: string; // bigint
  sha256: string;
}

/** `audit_personal_keys` */
export interface AuditPersonalKeyRow {
  call_id: string | null;
  created_at: Date;
  destroyed_at: Date | null;
  destroyed_by: string | null;
  id: string;
  key: Buffer | null;
  last_used_at: Date;
  organisation_id: string;
  period: string | null;
}

/** `availability_spans` */
export interface AvailabilitySpanRow {
  ended_at: Date;
  id: string; // bigint
  organisation_id: string;
  started_at: Date;
  user_id: string;
}

/** `call_items` */
export interface CallItemRow {
  asked_at: Date | null;
  call_id: string;
  currency: string;
  favourite: boolean;
  id: string;
  image_id: string | null;
  name: string;
  note: string;
  organisation_id: string;
  position: number;
  price_cents: string; // bigint
  product_id: string | null;
  product_url: string | null;
  shown_at: Date;
  sku: string;
  updated_at: Date;
  withdrawn_at: Date | null;
}

/** `call_messages` */
export interface CallMessageRow {
  body: string;
  call_id: string;
  created_at: Date;
  id: string;
  item_id: string | null;
  kind: 'text' | 'question';
  organisation_id: string;
  sender: 'clerk' | 'customer';
  user_id: string | null;
}

/** `call_notes` */
export interface CallNoteRow {
  body: string;
  call_id: string;
  organisation_id: string;
  updated_at: Date;
  updated_by: string | null;
}

/** `calls` */
export interface CallRow {
  channel: 'link' | 'queue' | 'widget' | 'api' | null;
  clerk_id: string | null;
  counted_at: Date | null;
  created_at: Date;
  end_reason: string | null;
  ended_at: Date | null;
  guest_token_expires_at: Date | null;
  guest_token_hash: string | null;
  id: string;
  link_nonce: string | null;
  link_revoked_at: Date | null;
  node_id: string | null;
  organisation_id: string;
  reference: string | null;
  scheduled_at: Date | null;
  started_at: Date | null;
  status: 'waiting' | 'active' | 'ended';
}

/** `insight_days` */
export interface InsightDayRow {
  available_seconds: number;
  calls_completed: number;
  calls_started: number;
  calls_unanswered: number;
  calls_with_cards: number;
  calls_with_favourite: number;
  cards_shown: number;
  clerk_id: string | null;
  consents_granted: number;
  consents_refused: number;
  day: string; // date: written and read as 'YYYY-MM-DD' text (its store selects day::text)
  durations: Record<string, number>;
  hours: number[];
  id: string; // bigint
  organisation_id: string;
  queue_abandoned: number;
  queue_answered: number;
  recordings: number;
  via_api: number;
  via_link: number;
  via_queue: number;
  via_widget: number;
  waits: Record<string, number>;
}

/** `insight_months`: the sums of a month's `insight_days` (written only by the database function insight_rebuild_months). */
export interface InsightMonthRow extends Omit<InsightDayRow, 'day' | 'hours'> {
  month: string; // date, as for insight_days
  week_hours: number[];
}

/** `insight_team_months`: the sums of a month's `insight_days` of all clerks together. */
export type InsightTeamMonthRow = Omit<InsightMonthRow, 'clerk_id'>;

/** `insight_product_months`: the sums of a month's `insight_products`. */
export interface InsightProductMonthRow extends Omit<InsightProductRow, 'day'> {
  last_day: string; // date
  month: string; // date
}

/** `insight_products` */
export interface InsightProductRow {
  day: string; // date, as for insight_days
  favourited: number;
  id: string; // bigint
  name: string;
  organisation_id: string;
  product_key: string;
  shown: number;
}

/** `legal_holds` */
export interface LegalHoldRow {
  call_id: string | null;
  created_at: Date;
  created_by: string | null;
  id: string;
  lift_reason: string | null;
  lifted_at: Date | null;
  lifted_by: string | null;
  organisation_id: string;
  reason: string;
  recording_id: string | null;
  scope: 'organisation' | 'call' | 'recording';
}

/** `login_throttles` */
export interface LoginThrottleRow {
  failures: number;
  key: string;
  locked_until: Date | null;
  updated_at: Date;
  window_started_at: Date;
}

/** `nodes` */
export interface NodeRow {
  calls: number;
  capacity: number;
  draining: boolean;
  heartbeat_seconds: number;
  id: string;
  media_address: string | null;
  name: string;
  renewed_at: Date;
  run_id: string;
  started_at: Date;
  stopped_at: Date | null;
  url: string;
  version: string;
  workers: number;
}

/** `one_time_tokens` */
export interface OneTimeTokenRow {
  created_at: Date;
  expires_at: Date;
  id: string;
  organisation_id: string | null;
  purpose: 'setup' | 'invite' | 'password_reset';
  token_hash: string;
  used_at: Date | null;
  user_id: string | null;
}

/** `organisations` */
export interface OrganisationRow {
  brand_color: string | null;
  closed_at: Date | null;
  created_at: Date;
  id: string;
  logo: Buffer | null;
  logo_type: string | null;
  name: string;
  purged_at: Date | null;
  password_sign_in: boolean;
  settings: Json;
  slug: string;
  updated_at: Date;
  vat_number: string | null;
}

/** `sso_providers` */
export interface SsoProviderRow {
  check_minutes: number;
  checked_at: Date | null;
  created_at: Date;
  enabled: boolean;
  id: string;
  kind: 'oidc' | 'ldap';
  label: string;
  organisation_id: string;
  secret_sealed: string | null;
  settings: Json;
  updated_at: Date;
}

/** `sso_role_mappings` */
export interface SsoRoleMappingRow {
  created_at: Date;
  directory_group: string;
  id: string;
  provider_id: string;
  role: 'admin' | 'clerk' | 'compliance';
}

/** `sso_used_values` */
export interface SsoUsedValueRow {
  expires_at: Date;
  value_hash: string;
}

/** `privacy_texts` */
export interface PrivacyTextRow {
  created_at: Date;
  created_by: string | null;
  id: string;
  kind: 'privacy_notice' | 'recording_notice';
  language: string;
  organisation_id: string;
  text: string;
  version: number;
}

/** `product_images` */
export interface ProductImageRow {
  content_type: string;
  created_at: Date;
  data: Buffer;
  id: string;
  organisation_id: string;
  position: number;
  product_id: string;
  sha256: string;
  size: number;
}

/** `products` */
export interface ProductRow {
  active: boolean;
  category: string | null;
  created_at: Date;
  currency: string;
  description: string;
  id: string;
  name: string;
  organisation_id: string;
  price_cents: string; // bigint
  product_url: string | null;
  search: string | null;
  sku: string;
  tags: string[];
  updated_at: Date;
}

/** `queue_entries` */
export interface QueueEntryRow {
  accepted_at: Date | null;
  accepted_by: string | null;
  auto_routed: boolean;
  call_id: string | null;
  channel: 'queue' | 'widget';
  counted_at: Date | null;
  created_at: Date;
  ended_at: Date | null;
  id: string;
  last_seen_at: Date;
  organisation_id: string;
  status: 'waiting' | 'accepted' | 'left' | 'expired';
  ticket_hash: string;
}

/** `recording_consents` */
export interface RecordingConsentRow {
  answer: 'granted' | 'declined' | 'withdrawn';
  answered_at: Date;
  call_id: string;
  id: string;
  ip: string | null;
  language: string;
  notice_text: string;
  notice_version: string;
  organisation_id: string;
  recording_id: string | null;
  role: 'clerk' | 'customer';
  user_id: string | null;
}

/** `recording_tracks` */
export interface RecordingTrackRow {
  ended_at_ms: string | null; // bigint
  exit_code: number | null;
  file_name: string;
  id: string;
  kinds: string[];
  partial: boolean;
  recording_id: string;
  role: 'clerk' | 'customer';
  started_at_ms: string; // bigint
}

/** `recordings` */
export interface RecordingRow {
  call_id: string;
  duration_ms: string | null; // bigint
  encrypted: boolean;
  error: string | null;
  file_name: string | null;
  finalised_at: Date | null;
  id: string;
  organisation_id: string;
  progress: number;
  sha256: string | null;
  size: string | null; // bigint
  started_at: Date;
  started_by: string | null;
  status: 'recording' | 'processing' | 'ready' | 'partial' | 'failed';
  stop_reason: string | null;
  stopped_at: Date | null;
}

/** `sessions` */
export interface SessionRow {
  created_at: Date;
  data: SessionData; // as the session store wrote it
  expires_at: Date;
  sid: string;
  user_id: string | null;
}

/** `subject_request_notes` */
export interface SubjectRequestNoteRow {
  created_at: Date;
  created_by: string | null;
  id: string;
  note: string;
  request_id: string;
  status: string;
}

/** `subject_requests` */
export interface SubjectRequestRow {
  call_ids: string[];
  call_reference: string | null;
  closed_at: Date | null;
  created_at: Date;
  created_by: string | null;
  due_at: Date;
  executed_at: Date | null;
  executed_by: string | null;
  id: string;
  identified_by: 'call_link' | 'reference' | 'window';
  kind: 'erasure' | 'access';
  organisation_id: string;
  result: Json | null;
  status: 'open' | 'in_progress' | 'completed' | 'rejected';
  updated_at: Date;
  window_clerk_id: string | null;
  window_from: Date | null;
  window_to: Date | null;
}

/** `users` */
export interface UserRow {
  availability: 'available' | 'busy' | 'away';
  available_since: Date | null;
  break_glass: boolean;
  created_at: Date;
  email: string;
  id: string;
  language: 'en' | 'de' | null;
  last_login_at: Date | null;
  last_login_ip: string | null;
  name: string;
  organisation_id: string;
  password_changed_at: Date | null;
  password_hash: string | null;
  role: 'admin' | 'clerk' | 'compliance';
  sessions_valid_after: Date;
  sso_deprovisioned_at: Date | null;
  sso_provider_id: string | null;
  sso_subject: string | null;
  status: 'invited' | 'active' | 'deactivated';
  updated_at: Date;
}

/** `webhook_deliveries` */
export interface WebhookDeliveryRow {
  attempt: number;
  audit_event_id: string; // bigint
  created_at: Date;
  delivered_at: Date | null;
  endpoint_id: string;
  error: string | null;
  event: string;
  id: string; // bigint
  next_attempt_at: Date;
  response_status: number | null;
  status: 'pending' | 'delivered' | 'failed';
}

/** `webhook_endpoints` */
export interface WebhookEndpointRow {
  created_at: Date;
  enabled: boolean;
  events: string[];
  id: string;
  last_event_id: string; // bigint
  organisation_id: string;
  secret: string;
  url: string;
}

/** Each table's row. */
export interface TableRows {
  api_keys: ApiKeyRow;
  api_request_log: ApiRequestLogRow;
  appliance_info: ApplianceInfoRow;
  audit_checkpoints: AuditCheckpointRow;
  audit_events: AuditEventRow;
  audit_exports: AuditExportRow;
  audit_personal_keys: AuditPersonalKeyRow;
  availability_spans: AvailabilitySpanRow;
  call_items: CallItemRow;
  call_messages: CallMessageRow;
  call_notes: CallNoteRow;
  calls: CallRow;
  insight_days: InsightDayRow;
  insight_months: InsightMonthRow;
  insight_product_months: InsightProductMonthRow;
  insight_products: InsightProductRow;
  insight_team_months: InsightTeamMonthRow;
  legal_holds: LegalHoldRow;
  login_throttles: LoginThrottleRow;
  nodes: NodeRow;
  one_time_tokens: OneTimeTokenRow;
  organisations: OrganisationRow;
  privacy_texts: PrivacyTextRow;
  product_images: ProductImageRow;
  products: ProductRow;
  queue_entries: QueueEntryRow;
  recording_consents: RecordingConsentRow;
  recording_tracks: RecordingTrackRow;
  recordings: RecordingRow;
  sessions: SessionRow;
  sso_providers: SsoProviderRow;
  sso_role_mappings: SsoRoleMappingRow;
  sso_used_values: SsoUsedValueRow;
  subject_request_notes: SubjectRequestNoteRow;
  subject_requests: SubjectRequestRow;
  users: UserRow;
  webhook_deliveries: WebhookDeliveryRow;
  webhook_endpoints: WebhookEndpointRow;
}

export type TableName = keyof TableRows;

/**
 * The columns that writes (`insert`, `update`) may give in another type than
 * reads return: bigint as a JS number, jsonb as JSON text, the checkpoint's
 * time as the ISO text it signs.
 */
interface WrittenAs {
  audit_checkpoints: { created_at: string; seq: number };
  audit_events: { details: string };
  audit_exports: { bytes: number; filters: string; first_seq: number | null; last_seq: number | null; row_count: number };
  call_items: { price_cents: number };
  insight_days: { durations: string; waits: string };
  organisations: { settings: string };
  products: { price_cents: number };
  recording_tracks: { ended_at_ms: number | null; started_at_ms: number };
  recordings: { duration_ms: number | null; size: number | null };
  sessions: { data: string };
  sso_providers: { settings: string };
  subject_requests: { result: string | null };
}

/** What a write takes for a row: any column may be left out (its default applies) or be a raw SQL expression. */
type Write<Row, As> = { [C in keyof Row]?: Row[C] | Knex.Raw | (C extends keyof As ? As[C] : never) };

/** Each table as knex sees it: its row, and for the tables of `WrittenAs` what inserts and updates take. */
type KnexTables = {
  [N in TableName]: N extends keyof WrittenAs
    ? Knex.CompositeTableType<TableRows[N], Write<TableRows[N], WrittenAs[N]>, Write<TableRows[N], WrittenAs[N]>>
    : TableRows[N];
};

declare module 'knex/types/tables' {
  interface Tables extends KnexTables {}
}
