import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { PayloadTooLargeError, ServiceUnavailableError, ValidationError, type FieldProblem } from '../core/errors';
import type { CheckedImport, ImportSummary } from './import';

/**
 * Reading and checking an import file (up to 10 MB, 20,000 rows) is CPU
 * work of a second or more: it runs in a worker thread, one per import, so
 * that the event loop keeps serving every other request (`/healthz`, calls,
 * pages) meanwhile. At most MAX_RUNNING run at once; the next ones wait,
 * and beyond MAX_WAITING an import is refused as busy (503).
 */
const MAX_RUNNING = 2;
const MAX_WAITING = 4;
/** Heap of one import worker; a file within the limits needs far less. */
const WORKER_HEAP_MB = 512;

export interface ThreadJob {
  mode: 'summary' | 'full';
  data: Uint8Array;
}

export type ThreadAnswer =
  | { ok: true; summary: ImportSummary }
  | { ok: true; checked: CheckedImport }
  | { ok: false; problem: 'validation'; fields: FieldProblem[] }
  | { ok: false; problem: 'too_large' };

let running = 0;
const waiting: (() => void)[] = [];

async function slot(): Promise<() => void> {
  if (running < MAX_RUNNING) running++;
  else {
    if (waiting.length >= MAX_WAITING) throw new ServiceUnavailableError('import_busy', { messageKey: 'catalog.errors.import_busy' });
    // A finishing import hands its slot straight over (running stays as it is), so none slips in between.
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
}

/** The worker's entry: the compiled .js beside this file, or under tsx (tests, `npm run dev`) the .ts source through tsx's loader. */
function startWorker(job: ThreadJob): Worker {
  const options = { workerData: job, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } };
  if (path.extname(__filename) === '.ts') {
    const source = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(path.join(__dirname, 'import-worker.ts'))});`;
    return new Worker(source, { ...options, eval: true });
  }
  return new Worker(path.join(__dirname, 'import-worker.js'), options);
}

function runJob(job: ThreadJob): Promise<ThreadAnswer> {
  return new Promise((resolve, reject) => {
    const worker = startWorker(job);
    let answer: ThreadAnswer | undefined;
    worker.once('message', (message: ThreadAnswer) => {
      answer = message;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (answer) resolve(answer);
      else reject(new Error(`the catalog import worker ended with code ${code} and no answer`));
    });
  });
}

async function inThread(mode: ThreadJob['mode'], data: Buffer): Promise<ThreadAnswer> {
  const release = await slot();
  try {
    const answer = await runJob({ mode, data });
    if (answer.ok) return answer;
    if (answer.problem === 'too_large') throw new PayloadTooLargeError('import_too_large', { messageKey: 'catalog.errors.import_too_large' });
    throw new ValidationError(answer.fields);
  } finally {
    release();
  }
}

/** The preview's part of an import file, read and checked off the event loop. */
export async function summariseImport(data: Buffer): Promise<ImportSummary> {
  const answer = await inThread('summary', data);
  if (!('summary' in answer)) throw new Error('unexpected answer of the import worker');
  return answer.summary;
}

/** The whole checked import (products included), read and checked off the event loop. */
export async function checkImportInThread(data: Buffer): Promise<CheckedImport> {
  const answer = await inThread('full', data);
  if (!('checked' in answer)) throw new Error('unexpected answer of the import worker');
  return answer.checked;
}
