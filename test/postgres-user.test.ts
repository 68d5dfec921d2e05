import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../app/db/embedded';
import { reachableByOthers } from '../app/db/postgres-user';
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
