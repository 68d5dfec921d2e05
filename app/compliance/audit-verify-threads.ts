import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ExportManifest } from './audit-export-manifest';
import { MAX_BREAKS, pieceHeadReason, type PieceHead, type RowBreak } from './audit-verify-rows';

/**
 * The offline verifier's row checks on several threads (large files): the
 * file's pieces of complete lines go round the threads
 * (audit-verify-worker.ts), each checks its piece's rows by itself and
 * keeps the first row's link open (`PieceHead`); the verdicts are merged
 * here in file order, where each piece's first row is linked to the last row
 * of the pieces before it. So the verdicts, line numbers and counts are the
 * ones RowChecker gives reading the file alone, line by line. A piece's memory
 * moves to its thread and back (transferred, not copied); at most
 * IN_FLIGHT pieces per thread are out, so memory stays at a few pieces.
 */
const IN_FLIGHT = 2;

export interface PieceJob {
  index: number;
  memory: ArrayBuffer;
  length: number;
  /** The text after the file's last "\n" (split as finalLines does). */
  final: boolean;
}

export interface PieceResult {
  index: number;
  rows: number;
  breaks: RowBreak[];
  breakCount: number;
  head: PieceHead | undefined;
  last: { seq: number; hash: string } | undefined;
  memory: ArrayBuffer;
}

/** Threads for the row checks: the machine's cores, at least 2 and at most 4. */
export function rowThreadCount(): number {
  return Math.min(4, Math.max(2, os.availableParallelism()));
}

/** The worker's entry: the compiled .js beside this file, or under tsx (tests, benches) the .ts source through tsx's loader. */
function startWorker(workerData: { manifest: ExportManifest; quick?: boolean }): Worker {
  if (path.extname(__filename) === '.ts') {
    const source = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(path.join(__dirname, 'audit-verify-worker.ts'))});`;
    return new Worker(source, { eval: true, workerData });
  }
  return new Worker(path.join(__dirname, 'audit-verify-worker.js'), { workerData });
}

export class RowThreads {
  rows = 0;
  breaks: RowBreak[] = [];
  breakCount = 0;
  first: { seq: number; hash: string } | undefined;
  last: { seq: number; hash: string } | undefined;
  private readonly workers: Worker[];
  private readonly results = new Map<number, PieceResult>();
  private readonly free: ArrayBuffer[] = [];
  private sent = 0;
  private merged = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly manifest: ExportManifest, threads: number, quick?: boolean) {
    this.workers = Array.from({ length: threads }, () => {
      const worker = startWorker({ manifest, quick });
      worker.on('message', (result: PieceResult) => this.received(result));
      worker.on('error', (err) => this.failed(err));
      worker.on('exit', (code) => {
        if (this.merged < this.sent) this.failed(new Error(`a row-checking thread ended with code ${code}`));
      });
      return worker;
    });
  }

  get broken(): RowBreak | undefined {
    return this.breaks[0];
  }

  /** Memory of at least `size` bytes for the next piece: handed back by a thread, or new. */
  take(size: number): Buffer {
    const memory = this.free.pop();
    return memory && memory.byteLength >= size ? Buffer.from(memory, 0, size) : Buffer.from(new ArrayBuffer(size));
  }

  /** Hands a piece from `take` to the next thread (its memory moves: the caller must not use it again). */
  async send(piece: Buffer, final: boolean): Promise<void> {
    while (this.sent - this.merged >= IN_FLIGHT * this.workers.length && !this.failure) await this.waitForThreads();
    if (this.failure) throw this.failure;
    const index = this.sent++;
    const job: PieceJob = { index, memory: piece.buffer as ArrayBuffer, length: piece.length, final };
    this.workers[index % this.workers.length]!.postMessage(job, [job.memory]);
  }

  /** Waits for every piece's verdicts. */
  async finish(): Promise<void> {
    while (this.merged < this.sent && !this.failure) await this.waitForThreads();
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    this.merged = this.sent;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private waitForThreads(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private failed(err: Error): void {
    this.failure ??= err;
    this.wakeUp();
  }

  private received(result: PieceResult): void {
    this.results.set(result.index, result);
    for (let next = this.results.get(this.merged); next; next = this.results.get(this.merged)) {
      this.results.delete(this.merged);
      this.merge(next);
      this.merged++;
      if (this.free.length < IN_FLIGHT * this.workers.length) this.free.push(next.memory);
    }
    this.wakeUp();
  }

  /** A piece's verdicts after those of the pieces before it: its first row linked to their last, its lines numbered on. */
  private merge(piece: PieceResult): void {
    const offset = this.rows;
    const breaks = piece.breaks.map((b) => ({ ...b, line: b.line + offset }));
    let count = piece.breakCount;
    if (piece.head) {
      const reason = pieceHeadReason(this.manifest, this.last, piece.head);
      if (reason) {
        breaks.push({ line: piece.head.line + offset, seq: piece.head.seq, reason });
        breaks.sort((a, b) => a.line - b.line);
        count++;
      }
      this.first ??= { seq: piece.head.seq, hash: piece.head.hash };
    }
    if (piece.last) this.last = piece.last;
    this.rows += piece.rows;
    this.breakCount += count;
    for (const b of breaks) if (this.breaks.length < MAX_BREAKS) this.breaks.push(b);
  }
}
