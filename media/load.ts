import fs from 'node:fs';
import path from 'node:path';

type Mediasoup = typeof import('mediasoup');

let loaded: Mediasoup | undefined;

/** Where the worker binary is: the configured path, else the one media/scripts/build-worker.sh installs. */
export function resolveWorkerBinary(configured: string | undefined, projectRoot: string): string {
  const bin = configured ?? path.join(projectRoot, 'media', 'bin', 'mediasoup-worker');
  if (!fs.existsSync(bin)) {
    throw new Error(
      configured
        ? `MEDIASOUP_WORKER_BIN points to ${bin}, which does not exist`
        : `the mediasoup worker is not built (${bin} is missing): run media/scripts/build-worker.sh`,
    );
  }
  return bin;
}

/**
 * Loads mediasoup with the given worker binary. mediasoup reads
 * MEDIASOUP_WORKER_BIN once, when the module is first loaded, so it is set
 * here before the first require and cannot change afterwards.
 */
export function loadMediasoup(workerBin: string): Mediasoup {
  if (loaded) {
    if (process.env.MEDIASOUP_WORKER_BIN !== workerBin) throw new Error('mediasoup is already loaded with another worker binary');
    return loaded;
  }
  process.env.MEDIASOUP_WORKER_BIN = workerBin;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded = require('mediasoup') as Mediasoup;
  return loaded;
}
