import { ConfigError, loadConfig, redactConfig } from '../config';
import { createApp } from './app';
import { resolveSessionSecret } from './auth/secret';
import { pruneExpiredSessions } from './auth/session-store';
import { sessionMiddleware } from './auth/session';
import { callModules } from './call-modules';
import { CallHub } from './calls/hub';
import { startMedia } from './calls/media-setup';
import { CallService } from './calls/service';
import { announceSetupLink } from './setup/link';
import { ensureApplianceKey } from './audit/signing';
import { startRecordings, type Recordings } from './recordings/setup';
import { startRetention, type RetentionScheduler } from './retention/scheduler';
import { startAuditVerification, type AuditVerification } from './audit/scheduler';
import { WebhookDispatcher } from './webhooks/dispatcher';
import { openDatabase, type Database } from './db/connection';
import { checkAppRole, migrateDatabase } from './db/prepare';
import type { RoleInspection } from './db/roles';
import { createShutdown } from './lifecycle/shutdown';
import { refusalsFor } from './audit/refusals';
import { restrictNewFiles, tightenDataDir } from './lifecycle/private-files';
import { DatabaseWatchdog } from './db/watchdog';
import { createLogger } from './logger';
import { createServer, resolveTls, scheme, TlsConfigError, type TlsSetup } from './http/tls';
import { trustProxyFunction } from './ops/addresses';
import { TurnIssuer } from './ops/turn';
import { appVersion } from './paths';
import { resolveFfmpeg } from '../media';

/** Exit code for an invalid configuration (EX_CONFIG from sysexits.h). */
export const EXIT_CONFIG = 78;

/**
 * The entry point: load the configuration, open the database (starting the
 * embedded one if needed), run migrations, serve HTTP, and shut down
 * gracefully on SIGTERM/SIGINT.
 */
async function main(): Promise<void> {
  // Everything the appliance and its ffmpegs write under the data directory is theirs alone (0600/0700).
  restrictNewFiles();
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }

  const logger = createLogger(config);
  logger.info({ version: appVersion, config: redactConfig(config) }, 'starting VClerk');

  // The TLS files are read before anything starts: unreadable or mismatched ones exit as a bad configuration
  // (the rules across settings, such as half a TLS or TURN setting, were checked by loadConfig).
  let tlsSetup: TlsSetup;
  let turn: TurnIssuer | null;
  try {
    tlsSetup = resolveTls(config, logger);
    turn = TurnIssuer.fromConfig(config);
  } catch (err) {
    if (err instanceof TlsConfigError) {
      logger.fatal(err.message);
      process.stderr.write(`Invalid configuration: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
  const tightened = tightenDataDir(config.dataDir);
  if (tightened.changed) logger.info(tightened, 'data directory: group and other permissions removed from earlier files');
  if (turn) logger.info({ turnUrls: turn.urlList, ttlSeconds: config.turnTtlSeconds }, 'TURN relay offered to browsers');

  let database: Database | undefined;
  let databaseRole: RoleInspection | undefined;
  let stopMedia: (() => Promise<void>) | undefined;
  const fail = async (err: unknown) => {
    logger.fatal({ err }, 'VClerk could not start');
    await stopMedia?.().catch(() => undefined);
    await database?.close().catch(() => undefined);
    process.exit(1);
  };

  const onEarlySignal = () => void fail(new Error('interrupted during start-up'));
  process.once('SIGTERM', onEarlySignal);
  process.once('SIGINT', onEarlySignal);

  try {
    database = await openDatabase(config, logger);
    // As the owner of the tables; the app itself runs as a role that may only add to the audit trail.
    const applied = await migrateDatabase(database);
    logger.info({ applied }, applied.length ? 'database migrated' : 'database schema is current');
    databaseRole = await checkAppRole(database, logger);
    await database.releaseOwner();
  } catch (err) {
    return fail(err);
  }

  let media: Awaited<ReturnType<typeof startMedia>>;
  try {
    media = await startMedia(config, logger);
    stopMedia = () => media.pool.close();
    const reconciled = await new CallService(database.knex).reconcileOnStart();
    if (reconciled.interrupted || reconciled.expired) logger.info(reconciled, 'calls reconciled after the restart');
  } catch (err) {
    return fail(err);
  }
  let recordings: Recordings;
  try {
    recordings = await startRecordings(config, database.knex, logger);
  } catch (err) {
    return fail(err);
  }
  let retention: RetentionScheduler;
  let auditVerification: AuditVerification;
  try {
    retention = await startRetention({ knex: database.knex, logger, dataDir: config.dataDir });
    // Every audit chain verified hourly against its signed checkpoints, and anchored anew when intact.
    auditVerification = await startAuditVerification({ knex: database.knex, logger, dataDir: config.dataDir });
  } catch (err) {
    return fail(err);
  }
  const sessionSecret = resolveSessionSecret(config);
  // The appliance's Ed25519 key that signs audit export manifests: made at the first start.
  const applianceKey = ensureApplianceKey(config.dataDir);
  logger.info({ fingerprint: applianceKey.info.fingerprint }, 'audit export signing key ready');
  const session = sessionMiddleware(database.knex, { secret: sessionSecret, idleMinutes: config.sessionIdleMinutes });
  const hub = new CallHub({
    knex: database.knex,
    logger,
    rooms: media.rooms,
    session,
    graceMs: config.signallingGraceSeconds * 1000,
    absoluteHours: config.sessionAbsoluteHours,
    modules: callModules({ knex: database.knex, recordings: recordings.live }),
    trustProxy: trustProxyFunction(config.trustProxy),
    turn,
    publicUrl: config.publicUrl,
  });
  // Probes the database while VClerk runs: restarts a dead embedded server, turns /healthz unhealthy, exits after too long.
  let giveUp: (reason: string) => void = () => undefined;
  const watchdog = new DatabaseWatchdog({
    knex: database.knex,
    logger,
    intervalMs: config.dbProbeIntervalMs,
    unhealthyAfterMs: config.dbUnhealthySeconds * 1000,
    exitAfterMs: config.dbUnavailableExitSeconds * 1000,
    embedded: database.server,
    onGiveUp: (reason) => giveUp(reason),
  });
  const ops = {
    pool: media.pool,
    rooms: media.rooms,
    jobs: recordings.jobs,
    tls: tlsSetup.mode === 'off' ? { mode: tlsSetup.mode } : { mode: tlsSetup.mode, fingerprint: tlsSetup.fingerprint, notAfter: tlsSetup.notAfter },
    database: { embedded: database.embedded, watchdog, role: databaseRole },
    ffmpegPath: resolveFfmpeg(config.ffmpegPath),
  };
  const app = createApp({ config, db: database.knex, logger, sessionSecret, session, hub, ops });
  const server = createServer(tlsSetup, app);
  hub.attach(server);
  server.on('error', (err) => void fail(err));
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  logger.info({ host: config.host, port: config.port, tls: tlsSetup.mode, embeddedDatabase: database.embedded }, `VClerk is listening on ${scheme(tlsSetup)}://${config.host}:${config.port}`);

  const db = database;
  const pruning = setInterval(() => {
    pruneExpiredSessions(db.knex).catch((err) => logger.warn({ err }, 'could not prune expired sessions'));
    hub.calls.expireStale().catch((err) => logger.warn({ err }, 'could not expire stale calls'));
  }, 15 * 60_000);
  pruning.unref();
  const webhooks = new WebhookDispatcher(db.knex, logger.child({ component: 'webhooks' }));
  webhooks.start();

  const { shutdown } = createShutdown({
    server,
    logger,
    timeoutMs: config.shutdownTimeoutMs,
    beforeDrain: [{ name: 'signalling', close: () => hub.close() }],
    closers: [
      { name: 'database watchdog', close: () => watchdog.stop() },
      { name: 'session pruning', close: async () => clearInterval(pruning) },
      // Running finalise jobs get the job queue's own 10 s to finish.
      { name: 'recording jobs', close: () => recordings.stop(), timeoutMs: 12_000 },
      { name: 'retention jobs', close: () => retention.stop() },
      { name: 'audit verification', close: () => auditVerification.stop() },
      { name: 'media workers', close: () => media.pool.close() },
      { name: 'webhooks', close: () => webhooks.stop() },
      // Refusals counted in memory (aggregated audit) are written before the database closes.
      { name: 'refusal audit', close: () => refusalsFor(db.knex).close() },
      { name: 'database', close: () => db.close() },
    ],
    exit: (code) => process.exit(code),
  });
  // The early handlers stay until the graceful shutdown is in place, so no signal finds the process without one.
  process.off('SIGTERM', onEarlySignal);
  process.off('SIGINT', onEarlySignal);
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // The safety net under handlers that must not throw (signalling, timers, jobs): a rejected promise no one
  // awaited is logged; after an uncaught exception the process state is unknown, so it shuts down (exit 1)
  // and the supervisor starts it again.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception: shutting down');
    void shutdown('uncaught exception', 1);
  });
  giveUp = (reason) => void shutdown(reason, 1);
  watchdog.start();

  await announceSetupLink(db.knex, config, logger).catch((err) => logger.error({ err }, 'could not issue the setup link'));
}

main().catch((err) => {
  process.stderr.write(`VClerk could not start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
