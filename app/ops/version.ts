import fs from 'node:fs';
import path from 'node:path';
import { appVersion, projectRoot } from '../core/paths';

export interface VersionInfo {
  version: string;
  /** The git commit the appliance was built from, when known. */
  commit: string | null;
}

/**
 * The appliance's version: package.json's, and the commit from
 * `dist/version.json` (`{ "commit": "<sha>" }`, written by a build that
 * knows it, e.g. the image build) or else from the working tree's .git.
 */
export function versionInfo(root = projectRoot): VersionInfo {
  return { version: appVersion, commit: commitFromBuild(root) ?? commitFromGit(root) };
}

const SHA = /^[0-9a-f]{40}$/;

function commitFromBuild(root: string): string | null {
  try {
    const { commit } = JSON.parse(fs.readFileSync(path.join(root, 'dist', 'version.json'), 'utf8')) as { commit?: unknown };
    return typeof commit === 'string' && SHA.test(commit) ? commit : null;
  } catch {
    return null;
  }
}

function commitFromGit(root: string): string | null {
  try {
    const gitDir = path.join(root, '.git');
    const head = fs.readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
    if (SHA.test(head)) return head;
    const ref = /^ref: (refs\/[\w./-]+)$/.exec(head)?.[1];
    if (!ref) return null;
    const loose = path.join(gitDir, ref);
    if (fs.existsSync(loose)) {
      const sha = fs.readFileSync(loose, 'utf8').trim();
      return SHA.test(sha) ? sha : null;
    }
    const packed = fs.readFileSync(path.join(gitDir, 'packed-refs'), 'utf8').split('\n').find((l) => l.endsWith(` ${ref}`));
    const sha = packed?.split(' ')[0];
    return sha && SHA.test(sha) ? sha : null;
  } catch {
    return null;
  }
}
