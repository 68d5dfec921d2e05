import { parentPort, workerData } from 'node:worker_threads';
import type { ExportManifest } from './audit-export-manifest';
import { completeLineRanges, finalLines } from './audit-verify-lines';
import { RowChecker } from './audit-verify-rows';
import type { PieceJob, PieceResult } from './audit-verify-threads';

/**
 * A row-checking thread of the offline verifier (audit-verify-threads.ts):
 * checks each piece of lines it is handed by itself, and hands the piece's
 * memory back with the verdicts.
 */
const { manifest, quick } = workerData as { manifest: ExportManifest; quick?: boolean };

parentPort!.on('message', (job: PieceJob) => {
  const checker = new RowChecker(manifest, { quick, piece: true });
  const bytes = Buffer.from(job.memory, 0, job.length);
  const line = (text: string) => checker.line(text);
  if (job.final) finalLines(bytes, line);
  else completeLineRanges(bytes, (buf, start, end) => checker.lineBytes(buf, start, end), line);
  const result: PieceResult = { index: job.index, rows: checker.rows, breaks: checker.breaks, breakCount: checker.breakCount, head: checker.head, last: checker.last, memory: job.memory };
  parentPort!.postMessage(result, [job.memory]);
});
