#!/usr/bin/env node
import { ConfigError, loadConfig, redactConfig } from '../config';
import { openDatabase } from './db/connection';
import { migrateLatest, migrationStatus } from './db/migrations';
import { createLogger } from './logger';

const USAGE = `Usage: vclerk <command>

Commands:
  migrate            apply pending database migrations
  migrate status     list applied and pending migrations
  config check       validate the configuration and exit
  config show        print the effective configuration (secrets masked)

Settings come from the environment (see docs/configuration.md).`;

type Command = (args: string[]) => Promise<number>;

const commands: Record<string, Command> = {
  async migrate(args) {
    const config = loadConfig();
    const logger = createLogger({ logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
    const db = await openDatabase(config, logger);
    try {
      if (args[0] === 'status') {
        const { applied, pending } = await migrationStatus(db.knex);
        for (const name of applied) console.log(`applied  ${name}`);
        for (const name of pending) console.log(`pending  ${name}`);
        console.log(`${applied.length} applied, ${pending.length} pending`);
      } else if (args.length === 0) {
        const applied = await migrateLatest(db.knex);
        console.log(applied.length ? `applied ${applied.length} migration(s):\n  ${applied.join('\n  ')}` : 'the database schema is current');
      } else {
        console.error(USAGE);
        return 2;
      }
      return 0;
    } finally {
      await db.close();
    }
  },
  async config(args) {
    const config = loadConfig();
    if (args[0] === 'check') console.log('configuration is valid');
    else if (args[0] === 'show') console.log(JSON.stringify(redactConfig(config), null, 2));
    else {
      console.error(USAGE);
      return 2;
    }
    return 0;
  },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = name ? commands[name] : undefined;
  if (!command) {
    console.error(USAGE);
    return name === undefined || name === 'help' || name === '--help' ? 0 : 2;
  }
  try {
    return await command(args);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 78;
    }
    console.error(`vclerk ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
