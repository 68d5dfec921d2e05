import type { Server } from 'node:http';
import { loadConfig, redactConfig, type Config } from '../../config';
import { resolveFfmpeg } from '../../media';
import { createApp } from '../app';
import { refusalsFor } from '../audit/refusals';
import { startAuditVerification } from '../audit/scheduler';
import { ensureApplianceKey } from '../audit/signing';
import { resolveSessionSecret } from '../security/secret';
import { sessionMiddleware } from '../access/session';
import { callModules } from '../call-modules';
import { CallHub } from '../calls/hub';
import { startMedia } from '../calls/media-setup';
import { CallService } from '../calls/service';
import { openDatabase, type Database } from '../db/connection';
import { checkAppRole, migrateDatabase } from '../db/prepare';
import type { RoleInspection } from '../db/roles';
import { DatabaseWatchdog } from '../db/watchdog';
import { NotifyBus } from '../db/notify-bus';
import { createServer, resolveTls, scheme, type TlsSetup } from '../net/tls';
import { JobQueue } from '../jobs/queue';
import { restrictNewFiles, tightenDataDir } from '../lifecycle/private-files';
import { createLogger, type Logger } from '../core/logger';
import { trustProxyFunction } from '../net/addresses';
import { TurnIssuer } from '../calls/turn';
import { appVersion } from '../core/paths';
import { startRecordings, type Recordings } from '../recordings/setup';
import { startRetention } from '../retention/scheduler';
import { WebhookDispatcher } from '../webhooks/dispatcher';
import type { Boot } from './boot';
import { scheduleHousekeeping } from './housekeeping';
import { startDirectoryCheck } from '../sso/directory-check';
import { SsoSecrets } from '../sso/provider-settings';
import { nodeIdentity } from '../nodes/identity';
import { NodeCluster } from '../nodes/cluster';
import { startScope } from '../nodes/failover';
import { NodeRegistry } from '../nodes/registry';

/**
 * The appliance's start phases, in the order app/server.ts runs them. Each
 * starts its part and registers how it stops (`boot.onStop`) right there;
 * the shutdown runs those stops in reverse order.
 */

export interface Settings {
  config: Config;
  logger: Logger;
  tls: TlsSetup;
  turn: TurnIssuer | null;
}

/**
 * config: the configuration (a bad one exits 78 naming every bad key), the
 * logger, and the TLS files, read before anything starts (unreadable or
 * mismatched ones exit 78 too).
 */
export function configure(boot: Boot): Settings {
  // Everything the appliance and its ffmpegs write under the data directory is theirs alone (0600/0700).
  restrictNewFiles();
  const config = loadConfig(process.env);
  const logger = createLogger(config);
  boot.useLogger(logger);
  logger.info({ version: appVersion, config: redactConfig(config) }, 'starting VClerk');
  // The rules across settings, such as half a TLS or TURN setting, were checked by loadConfig.
  const tls = resolveTls(config, logger);
  const turn = TurnIssuer.fromConfig(config);
  const tightened = tightenDataDir(config.dataDir);
  if (tightened.changed) logger.info(tightened, 'data directory: group and other permissions removed from earlier files');
  if (turn) logger.info({ turnUrls: turn.urlList, ttlSeconds: config.turnTtlSeconds }, 'TURN relay offered to browsers');
  return { config, logger, tls, turn };
}

export interface DatabaseParts {
  database: Database;
  role: RoleInspection;
  /** Made here, started with the background tasks. */
  watchdog: DatabaseWatchdog;
  /** Notifications between the nodes on this database (LISTEN/NOTIFY); call events go through it. */
  bus: NotifyBus;
}

/**
 * database: opened (the embedded server started if needed) and migrated as
 * the owner of the tables; the app itself runs as a role that may only add
 * to the audit trail. It closes last.
 */
export async function startDatabase(boot: Boot, { config, logger }: Settings): Promise<DatabaseParts> {
  const database = await openDatabase(config, logger);
  boot.onStop('database', () => database.close());
  // Refusals counted in memory (aggregated audit) are written before the database closes.
  boot.onStop('refusal audit', () => refusalsFor(database.knex).close());
  const applied = await migrateDatabase(database);
  logger.info({ applied }, applied.length ? 'database migrated' : 'database schema is current');
  const role = await checkAppRole(database, logger);
  await database.releaseOwner();
  // One listening connection of its own, as the app role; it closes before the pool.
  const bus = new NotifyBus({ knex: database.knex, logger: logger.child({ component: 'notify' }) });
  await bus.start();
  boot.onStop('notify bus', () => bus.close());
  // Probes the database while VClerk runs: restarts a dead embedded server, turns /healthz unhealthy, exits after too long.
  const watchdog = new DatabaseWatchdog({
    knex: database.knex,
    logger,
    intervalMs: config.dbProbeIntervalMs,
    unhealthyAfterMs: config.dbUnhealthySeconds * 1000,
    exitAfterMs: config.dbUnavailableExitSeconds * 1000,
    embedded: database.server,
    onGiveUp: (reason) => boot.stop(reason, 1),
  });
  return { database, role, watchdog, bus };
}

export type Media = Awaited<ReturnType<typeof startMedia>>;

/** media: the mediasoup workers; calls left active by the last run go back to waiting. */
export async function startMediaWorkers(boot: Boot, { config, logger }: Settings, { database }: DatabaseParts): Promise<Media> {
  const media = await startMedia(config, logger);
  boot.onStop('media workers', () => media.pool.close());
  const reconciled = await new CallService(database.knex).reconcileOnStart(await startScope(database.knex, config));
  if (reconciled.interrupted || reconciled.expired) logger.info(reconciled, 'calls reconciled after the restart');
  return media;
}

/**
 * node: this node's entry in the node registry (app/nodes/), once the
 * database and the media workers are up: registered under its name, then
 * renewed every heartbeat with the calls that have a media room in this
 * process. Stopping (after the signalling hub, since stops run in
 * reverse): the renewals end and the node is marked stopped.
 */
export async function startNode(boot: Boot, { config, logger }: Settings, { database }: DatabaseParts, media: Media): Promise<NodeRegistry> {
  const aliveWorkers = () => media.pool.describe().filter((w) => w.alive).length;
  const registry = new NodeRegistry({
    knex: database.knex,
    logger: logger.child({ component: 'nodes' }),
    identity: nodeIdentity(config, { mediaAddress: media.mediaAddress, workers: media.pool.describe().length }),
    version: appVersion,
    load: () => ({ calls: media.rooms.size, workers: aliveWorkers() }),
  });
  await registry.register();
  registry.start();
  boot.onStop('node registry', () => registry.stop());
  return registry;
}

export interface Jobs {
  queue: JobQueue;
  recordings: Recordings;
}

/**
 * jobs: the one job queue of the process (pg-boss, with its cron
 * scheduler), and everything that works on it: the recording finisher
 * (recordings cut off by the last run are reconciled and queued), retention,
 * the audit chain check, the housekeeping, and the single sign-on
 * directory check.
 */
export async function startJobs(boot: Boot, { config, logger }: Settings, { database }: DatabaseParts): Promise<Jobs> {
  const { knex } = database;
  const queue = new JobQueue(knex, logger.child({ component: 'jobs' }), { schedule: true });
  await queue.start();
  // Running jobs (a recording being finished) get the queue's own 10 s to finish.
  boot.onStop('job queue', () => queue.stop(), 12_000);
  const recordings = await startRecordings(config, knex, logger, queue, await startScope(knex, config));
  await startRetention({ jobs: queue, knex, logger, dataDir: config.dataDir });
  // Every audit chain verified hourly against its signed checkpoints, and anchored anew when intact.
  await startAuditVerification({ jobs: queue, knex, logger, dataDir: config.dataDir });
  await scheduleHousekeeping(queue, knex, logger);
  // People the directory no longer has or maps: their sessions ended (LDAP providers, each at its own interval).
  await startDirectoryCheck({ jobs: queue, knex, logger, secrets: new SsoSecrets(resolveSessionSecret(config), config.ssoSecrets) });
  return { queue, recordings };
}

/**
 * http: the audit signing key (made at the first start), the app with the
 * signalling hub attached, listening. Stopping: the hub closes first (its
 * recorders stop cleanly and their final files are queued), then running
 * requests drain.
 */
export async function startHttp(boot: Boot, { config, logger, tls: tlsSetup, turn }: Settings, { database, role, watchdog }: DatabaseParts, media: Media, jobs: Jobs, node?: NodeRegistry): Promise<{ hub: CallHub; server: Server }> {
  const { recordings } = jobs;
  const sessionSecret = resolveSessionSecret(config);
  // The appliance's Ed25519 key that signs audit export manifests: made at the first start.
  const applianceKey = ensureApplianceKey(config.dataDir);
  logger.info({ fingerprint: applianceKey.info.fingerprint }, 'audit export signing key ready');
  const session = sessionMiddleware(database.knex, { secret: sessionSecret, idleMinutes: config.sessionIdleMinutes });
  const trustProxy = trustProxyFunction(config.trustProxy);
  const cluster = node
    ? new NodeCluster({ knex: database.knex, jobs: jobs.queue, logger, self: { name: node.name, id: () => node.self?.id, steady: () => node.steady }, heartbeatSeconds: config.nodeHeartbeatSeconds, secret: sessionSecret, trustProxy })
    : undefined;
  const hub = new CallHub({
    knex: database.knex,
    logger,
    rooms: media.rooms,
    session,
    graceMs: config.signallingGraceSeconds * 1000,
    absoluteHours: config.sessionAbsoluteHours,
    modules: callModules({ knex: database.knex, recordings: recordings.live }),
    trustProxy,
    turn,
    publicUrl: config.publicUrl,
    ...(cluster ? { placement: cluster.placement } : {}),
  });
  const ops = {
    pool: media.pool,
    rooms: media.rooms,
    jobs: jobs.queue,
    tls: tlsSetup.mode === 'off' ? { mode: tlsSetup.mode } : { mode: tlsSetup.mode, fingerprint: tlsSetup.fingerprint, notAfter: tlsSetup.notAfter },
    database: { embedded: database.embedded, watchdog, role },
    ffmpegPath: resolveFfmpeg(config.ffmpegPath),
    ...(node ? { node: { name: node.name } } : {}),
  };
  const app = createApp({ config, db: database.knex, logger, sessionSecret, session, hub, ops });
  const server = createServer(tlsSetup, app);
  hub.attach(server);
  if (cluster) {
    // Signalling naming another node goes to it; the calls and recordings of gone nodes are taken back (app/nodes/).
    await cluster.start(server);
    boot.onStop('node cluster', () => cluster.stop());
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => void boot.fail(err));
  boot.serving(server);
  boot.onStop('signalling', () => hub.close());
  logger.info({ host: config.host, port: config.port, tls: tlsSetup.mode, embeddedDatabase: database.embedded }, `VClerk is listening on ${scheme(tlsSetup)}://${config.host}:${config.port}`);
  return { hub, server };
}

/**
 * background: the database watchdog and the webhook dispatcher, loops of
 * their own (a probe every few seconds must not depend on the database it
 * probes; webhooks go out within seconds). They stop first.
 */
export function startBackground(boot: Boot, { logger }: Settings, { database, watchdog }: DatabaseParts): void {
  watchdog.start();
  boot.onStop('database watchdog', () => watchdog.stop());
  const webhooks = new WebhookDispatcher(database.knex, logger.child({ component: 'webhooks' }));
  webhooks.start();
  boot.onStop('webhooks', () => webhooks.stop());
}
