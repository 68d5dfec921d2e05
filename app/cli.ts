#!/usr/bin/env node
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { Knex } from 'knex';
import { ConfigError, loadConfig, redactConfig, type Config } from '../config';
import { AdminCli, CliError } from './staff/admin-cli';
import { describeVerification, verifyExport, VerifyInputError } from './compliance/audit-offline-verify';
import { ensureApplianceKey } from './audit/signing';
import { createBackup } from './backup/create';
import { BackupError, EXIT as BACKUP_EXIT } from './backup/manifest';
import { restoreBackup, verifyArchive } from './backup/restore';
import { openDatabase } from './db/connection';
import { openDatabaseBesideAppliance } from './db/running';
import { migrationStatus } from './db/migrations';
import { migrateDatabase } from './db/prepare';
import { createLogger } from './core/logger';
import { restrictNewFiles } from './lifecycle/private-files';
import { runNodeCommand } from './nodes/cli';

const USAGE = `Usage: vclerk <command>

Commands:
  migrate            apply pending database migrations
  migrate status     list applied and pending migrations
  config check       validate the configuration and exit
  config show        print the effective configuration (secrets masked)
  user create-admin --email E --name N (--org ID | --org-name NAME)
                     create an administrator; prints a one-time link to choose a password
  user reset-password --email E
                     print a one-time password-reset link and lift a sign-in lockout
  setup-link         print a new first-run setup link (only before setup)
  node list          list the appliance nodes sharing the database (state, load, addresses)
  node drain <name>  the node keeps its calls but is given no new ones
  node undrain <name>
                     the node is given new calls again
  audit verify <export.ndjson> <manifest.json> [--public-key key.pem] [--skip-file-hash] [--threads N]
                     verify an audit export offline (no database, no configuration):
                     exit 0 intact, 1 broken or not matching, 2 usage or unreadable file;
                     rows are checked on N threads (default: the cores, 2 to 4, for files
                     from 16 MB; 0: on one thread)
  audit public-key   print the appliance's public signing key (created if missing)
  backup create <file.tar>
                     back up the database, recordings, signing key and session secret
                     (while the appliance runs); the file must not exist
  backup verify <file.tar>
                     check a backup's files against its manifest (no database needed)
  backup restore <file.tar>
                     restore into an EMPTY database and data directory, then migrate
                     exit codes: 0 done, 1 failed, 2 usage, 3 refused (target not empty
                     or file exists), 4 archive damaged, foreign or from a newer VClerk

Settings come from the environment (see docs/configuration.md).`;

type Command = (args: string[]) => Promise<number>;

const commands: Record<string, Command> = {
  async migrate(args) {
    const config = loadConfig();
    const logger = createLogger({ logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
    const db = await openDatabaseBesideAppliance(config, logger);
    try {
      if (args[0] === 'status') {
        const { applied, pending } = await migrationStatus(db.knex);
        for (const name of applied) console.log(`applied  ${name}`);
        for (const name of pending) console.log(`pending  ${name}`);
        console.log(`${applied.length} applied, ${pending.length} pending`);
      } else if (args.length === 0) {
        const applied = await migrateDatabase(db);
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

async function withDatabase<T>(work: (knex: Knex, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const logger = createLogger({ logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
  const db = await openDatabaseBesideAppliance(config, logger);
  try {
    await migrateDatabase(db);
    return await work(db.knex, config);
  } finally {
    await db.close();
  }
}

commands.user = async (args) => {
  const [sub, ...rest] = args;
  const { values } = parseArgs({ args: rest, options: { email: { type: 'string' }, name: { type: 'string' }, org: { type: 'string' }, 'org-name': { type: 'string' } } });
  if (sub === 'create-admin' && values.email && values.name) {
    const link = await withDatabase((knex, config) => new AdminCli(knex, config).createAdmin({ email: values.email!, name: values.name!, org: values.org, orgName: values['org-name'] }));
    console.log(`Administrator created. Open this one-time link to choose a password:\n${link}`);
    return 0;
  }
  if (sub === 'reset-password' && values.email) {
    const link = await withDatabase((knex, config) => new AdminCli(knex, config).resetPassword(values.email!));
    console.log(`Open this one-time link to choose a new password:\n${link}`);
    return 0;
  }
  console.error(USAGE);
  return 2;
};

commands['setup-link'] = async () => {
  const link = await withDatabase((knex, config) => new AdminCli(knex, config).setupLink());
  console.log(`Open this one-time link to set up VClerk:\n${link}`);
  return 0;
};

commands.node = async (args) => {
  const code = await withDatabase((knex) => runNodeCommand(knex, args, (line) => console.log(line)));
  if (code === 2) console.error(USAGE);
  return code;
};

/** `audit verify` needs neither the database nor the configuration: it runs on an auditor's machine. */
commands.audit = async (args) => {
  const [sub, ...rest] = args;
  if (sub === 'verify') {
    let parsed;
    try {
      parsed = parseArgs({ args: rest, allowPositionals: true, options: { 'public-key': { type: 'string' }, 'skip-file-hash': { type: 'boolean' }, threads: { type: 'string' } } });
    } catch (err) {
      console.error(`vclerk audit verify: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
      return 2;
    }
    const { values, positionals } = parsed;
    const threads = values.threads === undefined ? undefined : Number(values.threads);
    if (positionals.length !== 2 || (threads !== undefined && !(Number.isInteger(threads) && threads >= 0 && threads <= 64 && /^\d+$/.test(values.threads!)))) {
      console.error(USAGE);
      return 2;
    }
    try {
      const publicKeyPem = values['public-key'] === undefined ? undefined : fs.readFileSync(values['public-key'], 'utf8');
      const result = await verifyExport(positionals[0]!, positionals[1]!, { publicKeyPem, checkFileHash: !values['skip-file-hash'], rowThreads: threads });
      console.log(describeVerification(result));
      return result.ok ? 0 : 1;
    } catch (err) {
      if (err instanceof VerifyInputError || (err as NodeJS.ErrnoException).code) {
        console.error(`vclerk audit verify: ${err instanceof VerifyInputError ? err.message : `cannot read ${values['public-key']}: ${(err as NodeJS.ErrnoException).code}`}`);
        return 2;
      }
      throw err;
    }
  }
  if (sub === 'public-key' && rest.length === 0) {
    const key = ensureApplianceKey(loadConfig().dataDir);
    console.log(`fingerprint ${key.info.fingerprint}\nkey id      ${key.info.key_id}\n\n${key.info.pem.trimEnd()}`);
    return 0;
  }
  console.error(USAGE);
  return 2;
};

commands.backup = async (args) => {
  const [sub, file, ...rest] = args;
  if (!sub || !file || rest.length || !['create', 'verify', 'restore'].includes(sub)) {
    console.error(USAGE);
    return BACKUP_EXIT.usage;
  }
  try {
    if (sub === 'verify') {
      const manifest = await verifyArchive(file);
      console.log(`${file}: intact (made ${manifest.createdAt} by VClerk ${manifest.applianceVersion}, ${manifest.files.length} files)`);
      return 0;
    }
    const config = loadConfig();
    const logger = createLogger({ logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
    if (sub === 'create') {
      const db = await openDatabaseBesideAppliance(config, logger);
      try {
        const m = await createBackup({ knex: db.knex, dataDir: config.dataDir, file });
        const rows = m.database.tables.reduce((n, t) => n + t.rows, 0);
        const recordings = m.files.filter((f) => f.kind === 'recording');
        console.log(`backup written to ${file}: ${rows} rows in ${m.database.tables.length} tables, ${recordings.length} recording files, ${m.files.length - recordings.length} key files`);
        for (const r of m.excludedRecordings) console.log(`left out (still ${r.status}): recording ${r.id}`);
        for (const f of m.missingFiles) console.error(`warning: the file of recording ${f.recordingId} was missing: ${f.path}`);
      } finally {
        await db.close();
      }
      return 0;
    }
    const db = await openDatabase(config, logger);
    try {
      // As the owner of the tables (it disables their triggers while loading), then the app role's grants anew.
      const result = await restoreBackup({ knex: db.owner ?? db.knex, dataDir: config.dataDir, file });
      await migrateDatabase(db);
      console.log(`restored ${file} (made ${result.manifest.createdAt} by VClerk ${result.manifest.applianceVersion}): ${result.rows} rows in ${result.tables} tables, ${result.files} files`);
      console.log(result.upgraded.length ? `then applied ${result.upgraded.length} newer migration(s):\n  ${result.upgraded.join('\n  ')}` : 'the schema is current');
    } finally {
      await db.close();
    }
    return 0;
  } catch (err) {
    if (err instanceof BackupError) {
      console.error(`vclerk backup ${sub}: ${err.message}`);
      return err.exitCode;
    }
    throw err;
  }
};

async function main(argv: string[]): Promise<number> {
  // Backups, restored files and keys the CLI writes are the appliance's alone (0600/0700).
  restrictNewFiles();
  const [name, ...args] = argv;
  const command = name ? commands[name] : undefined;
  if (!command) {
    console.error(USAGE);
    return name === undefined || name === 'help' || name === '--help' ? 0 : 2;
  }
  try {
    return await command(args);
  } catch (err) {
    if (err instanceof CliError) {
      console.error(`vclerk ${name}: ${err.message}`);
      return 1;
    }
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 78;
    }
    console.error(`vclerk ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
