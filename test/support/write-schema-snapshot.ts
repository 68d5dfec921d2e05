import fs from 'node:fs';
import path from 'node:path';
import { migrateLatest } from '../../app/db/migrations';
import { createTestDatabase, startTestServer, stopTestServer } from './database';
import { describeSchema, migrationChecksums, snapshotFile } from './schema';

/**
 * `npm run db:snapshot`: migrate a fresh database and record the schema and
 * the migrations' checksums in test/fixtures/schema-snapshot.json. Run it
 * after adding a migration, and commit both together.
 */
async function main(): Promise<void> {
  await startTestServer();
  const db = await createTestDatabase({ migrated: false });
  try {
    await migrateLatest(db.knex);
    const snapshot = { migrations: migrationChecksums(), ...(await describeSchema(db.knex)) };
    fs.mkdirSync(path.dirname(snapshotFile), { recursive: true });
    fs.writeFileSync(snapshotFile, `${JSON.stringify(snapshot, null, 2)}\n`);
    console.log(`wrote ${path.relative(process.cwd(), snapshotFile)}`);
  } finally {
    await db.drop();
    await stopTestServer();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
