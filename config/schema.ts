import net from 'node:net';
import { boolean, host, integer, oneOf, text, trustProxy, url, type SettingType } from './types';

/**
 * The one schema for every VClerk setting. Each key documents itself; the
 * configuration reference in docs/configuration.md is generated from this
 * table (`npm run config:docs`), and a test fails when it is stale.
 *
 * Every setting can be given as an environment variable, as `<VARIABLE>_FILE`
 * naming a file that holds the value (Docker secrets), or as the key in the
 * optional JSON config file named by VCLERK_CONFIG_FILE. Precedence:
 * environment > config file > default.
 */
export interface SettingSpec<T> {
  env: string;
  description: string;
  type: SettingType<T>;
  /** Absent means the setting is optional and has no value unless given. */
  default?: T;
  /** Secrets are never logged and never echoed in error messages. */
  secret?: boolean;
}

function setting<T>(spec: Omit<SettingSpec<T>, 'default'> & { default: NoInfer<T> }): SettingSpec<T> & { default: T } {
  return spec;
}

function optional<T>(spec: Omit<SettingSpec<T>, 'default'>): SettingSpec<T> & { optional: true } {
  return { ...spec, optional: true };
}

// Declared apart so that their literal types survive inference inside setting().
const languageType = oneOf(['en', 'de'] as const);
const mediaLogLevelType = oneOf(['debug', 'warn', 'error', 'none'] as const);
const logLevelType = oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const);
const tlsModeType = oneOf(['off', 'files', 'self-signed'] as const);

/** A comma-separated list of `turn:` / `turns:` URLs (RFC 7065), e.g. `turns:turn.example.org:5349?transport=tcp`. */
function turnUrls(): SettingType<readonly string[]> {
  return {
    label: 'comma-separated turn:/turns: URLs',
    parse(raw) {
      if (typeof raw !== 'string') return { ok: false, reason: 'must be a comma-separated list of turn: or turns: URLs' };
      const urls = raw.split(',').map((s) => s.trim()).filter(Boolean);
      const bad = urls.find((u) => !/^turns?:(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?(?:\?transport=(?:udp|tcp))?$/.test(u));
      if (bad !== undefined) return { ok: false, reason: `"${bad}" is not a turn: or turns: URL (turn:host[:port][?transport=udp|tcp])` };
      if (urls.length === 0) return { ok: false, reason: 'must name at least one turn: or turns: URL' };
      return { ok: true, value: Object.freeze(urls) };
    },
  };
}

/** A comma-separated list of IP addresses and CIDR ranges; empty allows none. */
function addressList(): SettingType<string> {
  return {
    label: 'comma-separated IPs/CIDRs, or empty',
    parse(raw) {
      if (typeof raw !== 'string') return { ok: false, reason: 'must be a comma-separated list of IP addresses or CIDR ranges' };
      const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
      for (const item of items) {
        const [address, bits, extra] = item.split('/');
        const family = net.isIP(address ?? '');
        const validBits = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
        if (family === 0 || !validBits || extra !== undefined) return { ok: false, reason: `"${item}" is not an IP address or CIDR range` };
      }
      return { ok: true, value: items.join(',') };
    },
  };
}

/**
 * Single sign-on secrets kept out of the database: a JSON object of
 * organisation slug -> { "ldap": service account password, "oidc": client
 * secret }. Reasons never echo a value.
 */
function ssoSecrets(): SettingType<Readonly<Record<string, Readonly<{ ldap?: string; oidc?: string }>>>> {
  return {
    label: 'JSON object: {"<organisation slug>": {"ldap": "...", "oidc": "..."}}',
    parse(raw) {
      let value: unknown = raw;
      if (typeof raw === 'string') {
        try {
          value = JSON.parse(raw);
        } catch {
          return { ok: false, reason: 'must be a JSON object of organisation slug -> {"ldap": ..., "oidc": ...} (it does not parse as JSON)' };
        }
      }
      if (!value || typeof value !== 'object' || Array.isArray(value)) return { ok: false, reason: 'must be a JSON object of organisation slug -> {"ldap": ..., "oidc": ...}' };
      const out: Record<string, { ldap?: string; oidc?: string }> = {};
      for (const [slug, kinds] of Object.entries(value)) {
        if (!/^[a-z0-9-]{1,100}$/.test(slug)) return { ok: false, reason: `"${slug.slice(0, 100)}" is not an organisation slug (lower-case letters, digits, dashes)` };
        if (!kinds || typeof kinds !== 'object' || Array.isArray(kinds)) return { ok: false, reason: `the entry of "${slug}" must be an object with "ldap" and/or "oidc"` };
        const entry: { ldap?: string; oidc?: string } = {};
        for (const [kind, secret] of Object.entries(kinds as Record<string, unknown>)) {
          if (kind !== 'ldap' && kind !== 'oidc') return { ok: false, reason: `the entry of "${slug}" may name only "ldap" and "oidc", not "${kind.slice(0, 40)}"` };
          if (typeof secret !== 'string' || secret === '' || secret.length > 4096) return { ok: false, reason: `the ${kind} secret of "${slug}" must be a non-empty string of at most 4096 characters` };
          entry[kind] = secret;
        }
        out[slug] = Object.freeze(entry);
      }
      return { ok: true, value: Object.freeze(out) };
    },
  };
}

export const schema = {
  host: setting({
    env: 'VCLERK_HOST',
    description: 'Address the HTTP server listens on. 0.0.0.0 listens on all IPv4 interfaces.',
    type: host(),
    default: '0.0.0.0',
  }),
  port: setting({
    env: 'VCLERK_PORT',
    description: 'TCP port the HTTP server listens on.',
    type: integer(1, 65535),
    default: 8080,
  }),
  publicUrl: optional({
    env: 'VCLERK_PUBLIC_URL',
    description:
      'Base URL under which staff and customers reach the appliance, used in links it prints or shows (for example https://vclerk.example.org). When unset, links are built from the incoming request.',
    type: url(['http', 'https']),
  }),
  dataDir: setting({
    env: 'VCLERK_DATA_DIR',
    description:
      'Directory for the appliance\'s own data: the embedded PostgreSQL cluster (when DATABASE_URL is unset) and, later, recordings. Relative paths are resolved against the working directory.',
    type: text({ minLength: 1 }),
    default: './data',
  }),
  databaseUrl: optional({
    env: 'DATABASE_URL',
    description:
      'PostgreSQL connection URL (postgres://user:password@host:5432/database). When unset, VClerk starts an embedded PostgreSQL with its data under the data directory.',
    type: url(['postgres', 'postgresql']),
    secret: true,
  }),
  databaseOwnerUrl: optional({
    env: 'DATABASE_OWNER_URL',
    description:
      'PostgreSQL connection URL of the role that owns VClerk\'s tables (same database as DATABASE_URL). When set, migrations run as this role, and DATABASE_URL names the restricted role the running app uses (created by this role at start-up when it is missing and this role may create roles), which may only add to and read the audit trail. When unset, DATABASE_URL is used for both, and a warning says that the app\'s role can change the audit trail.',
    type: url(['postgres', 'postgresql']),
    secret: true,
  }),
  databasePoolMax: setting({
    env: 'VCLERK_DATABASE_POOL_MAX',
    description: 'Largest number of open connections in the database pool.',
    type: integer(1, 200),
    default: 10,
  }),
  embeddedDbPort: setting({
    env: 'VCLERK_EMBEDDED_DB_PORT',
    description: 'Port on 127.0.0.1 used by the embedded PostgreSQL. Only used when DATABASE_URL is unset.',
    type: integer(1024, 65535),
    default: 54320,
  }),
  trustProxy: setting({
    env: 'VCLERK_TRUST_PROXY',
    description:
      'Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto headers are trusted, so that client IP addresses in logs and the audit trail are correct. Empty trusts none; a number trusts that many hops; or a comma-separated list of addresses, CIDR ranges, loopback, linklocal, uniquelocal.',
    type: trustProxy(),
    default: '',
  }),
  defaultLanguage: setting({
    env: 'VCLERK_DEFAULT_LANGUAGE',
    description: 'Language used when neither the user\'s choice nor the browser\'s Accept-Language names a supported one.',
    type: languageType,
    default: 'en',
  }),
  logLevel: setting({
    env: 'VCLERK_LOG_LEVEL',
    description: 'Least severe level written to the JSON log on standard output.',
    type: logLevelType,
    default: 'info',
  }),
  logRequests: setting({
    env: 'VCLERK_LOG_REQUESTS',
    description: 'Write one log line per HTTP request (method, path with secrets masked, status, duration, request id).',
    type: boolean(),
    default: true,
  }),
  shutdownTimeoutMs: setting({
    env: 'VCLERK_SHUTDOWN_TIMEOUT_MS',
    description:
      'How long a graceful shutdown waits for running requests to finish before it closes the remaining connections and exits.',
    type: integer(0, 600000),
    default: 10000,
  }),
  dbProbeIntervalMs: setting({
    env: 'VCLERK_DB_PROBE_INTERVAL_MS',
    description:
      'How often the running appliance checks that its database answers. When the embedded PostgreSQL has died it is started again; an external database is reconnected to as soon as it answers.',
    type: integer(100, 600000),
    default: 5000,
  }),
  dbUnhealthySeconds: setting({
    env: 'VCLERK_DB_UNHEALTHY_SECONDS',
    description:
      'After the database has been unreachable this long, GET /healthz (the container health check) answers 503. GET /readyz answers 503 as soon as the database does not answer.',
    type: integer(1, 86400),
    default: 60,
  }),
  dbUnavailableExitSeconds: setting({
    env: 'VCLERK_DB_UNAVAILABLE_EXIT_SECONDS',
    description:
      'After the database has been unreachable this long, VClerk shuts down with exit code 1 so that its supervisor (Docker restart policy, systemd) restarts it. 0 never exits.',
    type: integer(0, 86400),
    default: 120,
  }),
  sessionSecret: optional({
    env: 'VCLERK_SESSION_SECRET',
    description:
      "Secret that signs session cookies (at least 32 characters); customer call links are derived under a key made from it, so that their clerk can be shown them again. When unset, VClerk generates one at first start and keeps it in <dataDir>/session.secret. Changing it signs everyone out, calls' links keep working but can no longer be shown again, and single sign-on secrets typed on the admin page (sealed under a key made from it) must be typed again.",
    type: text({ minLength: 32 }),
    secret: true,
  }),
  ssoSecrets: optional({
    env: 'VCLERK_SSO_SECRETS',
    description:
      'Single sign-on secrets given by configuration instead of the admin page (Users > Sign-in, /admin/sso), e.g. as a Docker secret through VCLERK_SSO_SECRETS_FILE: a JSON object {"<organisation slug>": {"ldap": "<service account password>", "oidc": "<client secret>"}}. A secret given here wins over one typed on the page; it is never stored in the database nor shown.',
    type: ssoSecrets(),
    secret: true,
  }),
  sessionIdleMinutes: setting({
    env: 'VCLERK_SESSION_IDLE_MINUTES',
    description: "A staff session ends after this many minutes without a request. A clerk's open call page renews it (every half of this time) until the call ends; the absolute lifetime still applies.",
    type: integer(5, 1440),
    default: 30,
  }),
  sessionAbsoluteHours: setting({
    env: 'VCLERK_SESSION_ABSOLUTE_HOURS',
    description: 'A staff session ends this many hours after sign-in, however active.',
    type: integer(1, 168),
    default: 12,
  }),
  loginMaxFailuresPerAccount: setting({
    env: 'VCLERK_LOGIN_MAX_FAILURES_PER_ACCOUNT',
    description: 'Failed sign-ins for one e-mail address within the lockout window before that address is locked.',
    type: integer(3, 100),
    default: 5,
  }),
  loginMaxFailuresPerIp: setting({
    env: 'VCLERK_LOGIN_MAX_FAILURES_PER_IP',
    description: 'Failed sign-ins from one client IP address within the lockout window before that address is locked.',
    type: integer(5, 1000),
    default: 20,
  }),
  loginLockoutMinutes: setting({
    env: 'VCLERK_LOGIN_LOCKOUT_MINUTES',
    description: 'Length of the failure-counting window and of a lockout.',
    type: integer(1, 1440),
    default: 15,
  }),
  refusalBurst: setting({
    env: 'VCLERK_REFUSAL_BURST',
    description:
      'Refused anonymous requests (wrong sign-ins, bad API keys, unknown call or one-time links, signalling tokens, queue tickets) one client IP may make at once, per kind, before further ones are answered 429 rate_limited without any database work. API keys get four times as many (integrations send requests in parallel batches).',
    type: integer(1, 10000),
    default: 30,
  }),
  queueTicketsPerIp: setting({
    env: 'VCLERK_QUEUE_TICKETS_PER_IP',
    description: 'Waiting places in an organisation\'s public queue that one client IP address (an IPv6 client: its /64 network) may hold at once; more are refused (429 queue_limit). Customers behind one shared address (a mobile carrier\'s or a branch\'s NAT) share it.',
    type: integer(1, 1000),
    default: 10,
  }),
  refusalPerMinute: setting({
    env: 'VCLERK_REFUSAL_PER_MINUTE',
    description: 'How many of the refusals counted by VCLERK_REFUSAL_BURST a client IP gets back per minute.',
    type: integer(1, 10000),
    default: 30,
  }),
  setupLinkHours: setting({
    env: 'VCLERK_SETUP_LINK_HOURS',
    description: 'How long the first-run setup link printed to the log stays valid.',
    type: integer(1, 168),
    default: 24,
  }),
  inviteLinkHours: setting({
    env: 'VCLERK_INVITE_LINK_HOURS',
    description: 'How long an invitation link for a new staff user stays valid.',
    type: integer(1, 720),
    default: 72,
  }),
  passwordResetLinkHours: setting({
    env: 'VCLERK_PASSWORD_RESET_LINK_HOURS',
    description: 'How long a password-reset link stays valid.',
    type: integer(1, 72),
    default: 2,
  }),
  mediasoupWorkerBin: optional({
    env: 'MEDIASOUP_WORKER_BIN',
    description:
      'Path of the mediasoup-worker binary. When unset, VClerk uses media/bin/mediasoup-worker, built by media/scripts/build-worker.sh.',
    type: text({ minLength: 1 }),
  }),
  mediaWorkers: setting({
    env: 'VCLERK_MEDIA_WORKERS',
    description: 'Number of mediasoup workers (media server processes). 0 starts one per CPU core.',
    type: integer(0, 64),
    default: 0,
  }),
  mediaListenIp: setting({
    env: 'VCLERK_MEDIA_LISTEN_IP',
    description: 'Address the media workers listen on for WebRTC (UDP and TCP).',
    type: host(),
    default: '0.0.0.0',
  }),
  mediaAnnouncedAddress: optional({
    env: 'VCLERK_MEDIA_ANNOUNCED_ADDRESS',
    description:
      'IP address browsers use to reach the media workers (the appliance\'s LAN or public address). When unset and the listen address is 0.0.0.0, the first non-loopback IPv4 address of the machine is announced (and logged).',
    type: host(),
  }),
  nodeName: optional({
    env: 'VCLERK_NODE_NAME',
    description:
      "This node's name among the appliance nodes that share one database (lower-case letters, digits and dashes, at most 63), unique per node: it registers under it, and `vclerk node drain <name>` names it. When unset: the machine's host name, lower-cased, any other character turned into a dash.",
    type: text({ pattern: /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, hint: 'must be 1-63 lower-case letters, digits and dashes, not starting or ending with a dash' }),
  }),
  nodeUrl: optional({
    env: 'VCLERK_NODE_URL',
    description:
      "This node's own base URL, as the other nodes and the load balancer reach it (for example http://10.0.0.11:8080). When unset: http(s)://<VCLERK_HOST, or the host name when listening on all addresses>:<VCLERK_PORT>.",
    type: url(['http', 'https']),
  }),
  nodeCapacity: optional({
    env: 'VCLERK_NODE_CAPACITY',
    description: 'How many calls this node takes at once; the node registry shows it beside the calls the node carries. When unset: 100 per media worker.',
    type: integer(1, 100000),
  }),
  nodeHeartbeatSeconds: setting({
    env: 'VCLERK_NODE_HEARTBEAT_SECONDS',
    description: 'How often this node renews its entry in the node registry (with its load), and looks for nodes that are gone. A node that has not renewed for three of its heartbeats (one and a half when its process died) counts as gone: its calls are placed again on a living node when their participants reconnect, and its recordings are closed as partial.',
    type: integer(1, 300),
    default: 2,
  }),
  mediaPort: setting({
    env: 'VCLERK_MEDIA_PORT',
    description: 'First media port: worker i uses this port + i, UDP and TCP. Open these ports in the firewall.',
    type: integer(1024, 65000),
    default: 40000,
  }),
  mediaLogLevel: setting({
    env: 'VCLERK_MEDIA_LOG_LEVEL',
    description: 'Log level of the mediasoup workers.',
    type: mediaLogLevelType,
    default: 'warn',
  }),
  signallingGraceSeconds: setting({
    env: 'VCLERK_SIGNALLING_GRACE_SECONDS',
    description: 'How long a participant whose connection dropped may take to reconnect before their media is closed.',
    type: integer(1, 300),
    default: 15,
  }),
  callLinkHours: setting({
    env: 'VCLERK_CALL_LINK_HOURS',
    description: 'How long a customer link to a call started by a clerk stays valid.',
    type: integer(1, 720),
    default: 24,
  }),
  ffmpegPath: optional({
    env: 'FFMPEG_PATH',
    description: 'Path of the ffmpeg binary that records calls. When unset, VClerk uses the binary of the optional npm package ffmpeg-static if it was installed, else `ffmpeg` from the PATH (Debian\'s ffmpeg package; in the image, the lean ffmpeg built from Debian\'s source, docs/docker.md).',
    type: text({ minLength: 1 }),
  }),
  recordingPortMin: setting({
    env: 'VCLERK_RECORDING_PORT_MIN',
    description: 'First of the local UDP ports (on 127.0.0.1 only, no firewall change needed) on which the recorder receives the media of calls being recorded: 4 per participant.',
    type: integer(1024, 65000),
    default: 45000,
  }),
  recordingPortMax: setting({
    env: 'VCLERK_RECORDING_PORT_MAX',
    description: 'Last of the recorder\'s local UDP ports (see VCLERK_RECORDING_PORT_MIN).',
    type: integer(1024, 65535),
    default: 45999,
  }),
  mediaRtcPortMin: setting({
    env: 'VCLERK_MEDIA_RTC_PORT_MIN',
    description: 'First of the local UDP ports (127.0.0.1) the media workers send recorded media from. Must not overlap the recorder\'s ports or VCLERK_MEDIA_PORT.',
    type: integer(1024, 65000),
    default: 46000,
  }),
  mediaRtcPortMax: setting({
    env: 'VCLERK_MEDIA_RTC_PORT_MAX',
    description: 'Last of the media workers\' local ports for recorded media (see VCLERK_MEDIA_RTC_PORT_MIN).',
    type: integer(1024, 65535),
    default: 46999,
  }),
  recordingMinFreeMb: setting({
    env: 'VCLERK_RECORDING_MIN_FREE_MB',
    description: 'Free space (MiB) the disk holding the data directory must keep: below it no recording starts, and running ones are stopped cleanly.',
    type: integer(0, 10_000_000),
    default: 2048,
  }),
  recordingKey: optional({
    env: 'VCLERK_RECORDING_KEY',
    description: 'Turns on encryption at rest of recordings (AES-256-GCM): 32 random bytes as 64 hex digits or base64 (e.g. `openssl rand -base64 32`). Keep it safe and backed up apart from the data: without it, encrypted recordings cannot be played.',
    type: text({ pattern: /^(?:[0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?)$/, hint: 'must be 32 bytes as 64 hex digits or base64' }),
    secret: true,
  }),
  summaryDays: setting({
    env: 'VCLERK_SUMMARY_DAYS',
    description: "How many days after a call ends the customer's link still opens the call summary; 0 turns the customer summary off.",
    type: integer(0, 365),
    default: 14,
  }),
  tls: setting({
    env: 'VCLERK_TLS',
    description:
      'HTTPS served by VClerk itself. `off`: plain HTTP (behind the organisation\'s reverse proxy, which terminates TLS; set VCLERK_TRUST_PROXY). `files`: the certificate and key named by VCLERK_TLS_CERT_FILE and VCLERK_TLS_KEY_FILE. `self-signed`: a certificate made at the first start and kept under <dataDir>/tls/ (browsers warn; its SHA-256 fingerprint is logged at every start so that users can check it).',
    type: tlsModeType,
    default: 'off',
  }),
  tlsCertFile: optional({
    env: 'VCLERK_TLS_CERT_FILE',
    description: 'PEM file with the server certificate, followed by any intermediate certificates (VCLERK_TLS=files). Read at start-up.',
    type: text({ minLength: 1 }),
  }),
  tlsKeyFile: optional({
    env: 'VCLERK_TLS_KEY_FILE',
    description: 'PEM file with the private key of VCLERK_TLS_CERT_FILE (VCLERK_TLS=files). Read at start-up.',
    type: text({ minLength: 1 }),
  }),
  turnUrls: optional({
    env: 'VCLERK_TURN_URLS',
    description:
      'TURN servers browsers may relay media through when they cannot reach the media port directly (strict firewalls), as comma-separated turn: or turns: URLs, e.g. `turn:turn.example.org:3478,turns:turn.example.org:5349?transport=tcp`. Needs VCLERK_TURN_SECRET. When unset, no TURN server is offered.',
    type: turnUrls(),
  }),
  turnSecret: optional({
    env: 'VCLERK_TURN_SECRET',
    description:
      'Shared secret with the TURN server (coturn `use-auth-secret` / `static-auth-secret`, at least 32 characters): VClerk gives each participant time-limited credentials made from it (TURN REST API scheme).',
    type: text({ minLength: 32 }),
    secret: true,
  }),
  turnTtlSeconds: setting({
    env: 'VCLERK_TURN_TTL_SECONDS',
    description: 'How long the TURN credentials given to a participant stay valid. A participant gets new ones at every (re)join and ICE restart.',
    type: integer(60, 86400),
    default: 3600,
  }),
  metricsAllow: setting({
    env: 'VCLERK_METRICS_ALLOW',
    description:
      'Client addresses (IPs or CIDR ranges, comma-separated) allowed to read the Prometheus metrics at /metrics without a token; empty allows none. Behind a reverse proxy, the client address is taken from X-Forwarded-For only when VCLERK_TRUST_PROXY trusts the proxy; a forwarded request from an untrusted proxy needs the token.',
    type: addressList(),
    default: '127.0.0.1,::1',
  }),
  metricsToken: optional({
    env: 'VCLERK_METRICS_TOKEN',
    description: 'Bearer token (at least 32 characters) that allows reading /metrics from any address (`Authorization: Bearer <token>`).',
    type: text({ minLength: 32 }),
    secret: true,
  }),
} as const;

export type Schema = typeof schema;
export type SettingKey = keyof Schema;
type ValueOf<K extends SettingKey> = Schema[K]['type'] extends SettingType<infer T> ? T : never;
export type Config = {
  readonly [K in SettingKey]: Schema[K] extends { optional: true } ? ValueOf<K> | undefined : ValueOf<K>;
};

/** The variable naming the optional JSON config file. It is not itself a setting. */
export const CONFIG_FILE_ENV = 'VCLERK_CONFIG_FILE';
