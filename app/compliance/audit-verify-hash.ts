import crypto from 'node:crypto';
import { Worker } from 'node:worker_threads';

/**
 * The export file's SHA-256 for the offline verifier, computed on a worker
 * thread (the other core) while the main thread checks the rows of the same
 * pieces: each piece's memory is handed over (transferred, not copied), at
 * most four in flight, in order, and handed back to be read into again (so
 * memory stays at a few pieces whatever the file's size). Small files are hashed on the main thread
 * (starting a thread costs more than it saves).
 */
const WORKER = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (m) => {
  if (m === null) parentPort.postMessage({ digest: hash.digest('hex') });
  else { hash.update(new Uint8Array(m.buffer, m.offset, m.length)); parentPort.postMessage({ buffer: m.buffer }, [m.buffer]); }
});`;
const IN_FLIGHT = 4;
/** Below this, one thread. */
export const THREAD_HASH_MIN_BYTES = 16 << 20;

export interface FileHash {
  /** Adds a piece; with a thread the piece's memory moves there (the caller must not use it again). */
  update(piece: Buffer): Promise<void> | void;
  digest(): Promise<string>;
  /** A buffer of at least `size` bytes to read into: one handed back by the thread, or a new one. */
  take(size: number): Buffer;
  /** Ends the thread, if any (after digest, or on failure). */
  close(): Promise<void>;
}

/** `thread: false` hashes on the calling thread whatever the size. */
export function fileHash(bytes: number, thread = true): FileHash {
  if (!thread || bytes < THREAD_HASH_MIN_BYTES) {
    const hash = crypto.createHash('sha256');
    return { update: (piece) => void hash.update(piece), digest: async () => hash.digest('hex'), take: (size) => Buffer.allocUnsafe(size), close: async () => undefined };
  }
  const worker = new Worker(WORKER, { eval: true });
  worker.unref();
  let inFlight = 0;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  let digested: ((hex: string) => void) | null = null;
  const waitForWorker = () => new Promise<void>((resolve) => (wake = resolve));
  const free: ArrayBuffer[] = [];
  worker.on('message', (m: { digest?: string; buffer?: ArrayBuffer }) => {
    if (m.digest) {
      digested?.(m.digest);
    } else {
      inFlight--;
      if (m.buffer && free.length < IN_FLIGHT) free.push(m.buffer);
    }
    const w = wake;
    wake = null;
    w?.();
  });
  worker.on('error', (err) => {
    failure = err;
    const w = wake;
    wake = null;
    w?.();
  });
  return {
    async update(piece) {
      while (inFlight >= IN_FLIGHT && !failure) await waitForWorker();
      if (failure) throw failure;
      inFlight++;
      // The piece's memory moves (its whole ArrayBuffer); one from Buffer's shared pool of small buffers is copied.
      const shared = piece.buffer.byteLength <= Buffer.poolSize;
      const buffer = (shared ? new Uint8Array(piece).buffer : piece.buffer) as ArrayBuffer;
      worker.postMessage({ buffer, offset: shared ? 0 : piece.byteOffset, length: piece.length }, [buffer]);
    },
    take(size) {
      const buffer = free.pop();
      return buffer && buffer.byteLength >= size ? Buffer.from(buffer, 0, size) : Buffer.allocUnsafe(size);
    },
    async digest() {
      const hex = new Promise<string>((resolve) => (digested = resolve));
      worker.postMessage(null);
      while (!failure) {
        const done = await Promise.race([hex, waitForWorker().then(() => null)]);
        if (done !== null) return done;
      }
      throw failure;
    },
    async close() {
      await worker.terminate();
    },
  };
}
