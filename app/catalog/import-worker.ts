import { parentPort, workerData } from 'node:worker_threads';
import { PayloadTooLargeError, ValidationError } from '../core/errors';
import { checkImport, summarise } from './import';
import type { ThreadAnswer, ThreadJob } from './import-thread';

/**
 * The worker thread of a catalog import: reads the file and checks every
 * row (`checkImport`), away from the event loop, and answers with the
 * summary (preview) or the products (apply). File-level problems go back
 * as data, so the main thread raises the same typed errors as before.
 */
function run(job: ThreadJob): ThreadAnswer {
  try {
    const checked = checkImport(Buffer.from(job.data.buffer, job.data.byteOffset, job.data.byteLength));
    return job.mode === 'summary' ? { ok: true, summary: summarise(checked) } : { ok: true, checked };
  } catch (err) {
    if (err instanceof ValidationError) return { ok: false, problem: 'validation', fields: err.fields };
    if (err instanceof PayloadTooLargeError) return { ok: false, problem: 'too_large' };
    throw err;
  }
}

parentPort?.postMessage(run(workerData as ThreadJob));
