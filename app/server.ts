import { announceSetupLink } from './setup/link';
import { Boot } from './start/boot';
import { configure, startBackground, startDatabase, startHttp, startJobs, startMediaWorkers, startNode } from './start/phases';

/**
 * The entry point: the start phases in order (app/start/phases.ts). Each
 * registers how its part stops where it starts; SIGTERM and SIGINT stop
 * them in reverse order. A phase that fails ends the start-up (exit 78 for
 * a bad configuration, else 1).
 */
async function main(): Promise<void> {
  const boot = new Boot();
  const settings = await boot.phase('config', () => configure(boot));
  const database = await boot.phase('database', () => startDatabase(boot, settings));
  const media = await boot.phase('media', () => startMediaWorkers(boot, settings, database));
  const node = await boot.phase('node', () => startNode(boot, settings, database, media));
  const jobs = await boot.phase('jobs', () => startJobs(boot, settings, database));
  await boot.phase('http', () => startHttp(boot, settings, database, media, jobs, node));
  await boot.phase('background', () => startBackground(boot, settings, database));
  if (!boot.running(settings.config.shutdownTimeoutMs)) return; // interrupted during the start-up: it is being stopped
  // While no organisation exists: a one-time setup link, once the shutdown is in place.
  await announceSetupLink(database.database.knex, settings.config, settings.logger).catch((err) => settings.logger.error({ err }, 'could not issue the setup link'));
}

main().catch((err) => {
  process.stderr.write(`VClerk could not start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
