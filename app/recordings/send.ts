/**
 * Answers GET and HEAD for a stored recording, plain or encrypted, with
 * single byte ranges (HTTP range requests) so that browsers can play and
 * seek, and downloads can resume.
 *
 * - `Range: bytes=a-b`, `a-` or `-n` answers 206 with Content-Range;
 *   overlapping or adjacent ranges are merged first.
 * - A range that lies wholly beyond the end answers 416 with
 *   `Content-Range: bytes *\/size`.
 * - Several (disjoint) ranges answer 200 with the whole file: multipart
 *   responses are not made, which HTTP allows (a server may ignore Range).
 *   Malformed Range headers and units other than bytes are ignored as well.
 * - `If-Range` is honoured only with the recording's ETag (from its SHA-256,
 *   when given); any other validator means the whole file (200).
 *
 * Before any header goes out, the stored file is checked against the
 * expected size and its first chunk is read (for encrypted files: decrypted
 * and authenticated), so a missing or damaged file or a wrong key becomes a
 * proper error answer. A chunk that fails authentication later, mid-stream,
 * destroys the response: the client sees a broken download, never bytes
 * that were not authenticated. When the client goes away, reading stops.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import { AppError, ServiceUnavailableError } from '../core/errors';
import { RecordingIntegrityError, decryptRange, encryptedPlainSize } from './crypto';

/** The recording is stored encrypted and VCLERK_RECORDING_KEY is not configured. */
export class RecordingKeyMissingError extends ServiceUnavailableError {
  constructor() {
    super('recording_key_missing');
  }
}

export interface RecordingFileToSend {
  path: string;
  encrypted: boolean;
  /** Plaintext size in bytes, as stored in the database. */
  size: number;
  contentType: string;
  /** Given: answered as a download (`attachment`) with this name. Absent: `inline`. */
  downloadName?: string;
  /** SHA-256 (hex) of the plaintext; given, it becomes the strong ETag and enables If-Range. */
  sha256?: string;
}

type ByteRange = { start: number; end: number };

/** The range to answer: a single range, `unsatisfiable`, or undefined for the whole file. */
function chooseRange(req: Request, size: number, etag: string | undefined): ByteRange | 'unsatisfiable' | undefined {
  const header = req.get('Range');
  if (!header || !/^\s*bytes=/i.test(header)) return undefined;
  const ifRange = req.get('If-Range');
  if (ifRange !== undefined && (etag === undefined || ifRange.trim() !== etag)) return undefined;
  const ranges = req.range(size, { combine: true });
  if (ranges === undefined || ranges === -2) return undefined;
  if (ranges === -1) return 'unsatisfiable';
  if (ranges.length !== 1) return undefined;
  return ranges[0];
}

/** `inline`, or `attachment` with an ASCII filename (and the exact one as RFC 8187 filename* when it differs). */
export function contentDisposition(downloadName: string | undefined): string {
  if (downloadName === undefined) return 'inline';
  const name = downloadName.replace(/[/\\]/g, '_');
  const fallback = name.replace(/[^\x20-\x7e]|["%]/g, '_');
  if (fallback === name) return `attachment; filename="${name}"`;
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/** Checks the stored file against the expected size; the plain file's handle is returned open. */
async function openChecked(file: RecordingFileToSend): Promise<fs.promises.FileHandle | undefined> {
  if (file.encrypted) {
    if ((await encryptedPlainSize(file.path)) !== file.size) {
      throw new RecordingIntegrityError('The encrypted recording does not have the size recorded for it.');
    }
    return undefined;
  }
  const handle = await fs.promises.open(file.path, 'r');
  try {
    if ((await handle.stat()).size !== file.size) throw new Error('The recording file does not have the size recorded for it.');
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

function isClientGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE';
}

/**
 * Sends a stored recording for GET or HEAD. Throws (before any header is
 * written) RecordingKeyMissingError when the file is encrypted and `key` is
 * null, and the file's own errors when it is missing, has the wrong size, or
 * its first chunk does not authenticate. Resolves when the answer is sent,
 * the client went away, or a later failure destroyed the response (logged
 * through `req.log`).
 */
export async function sendRecordingFile(req: Request, res: Response, file: RecordingFileToSend, key: Buffer | null): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    throw new AppError(405, 'method_not_allowed');
  }
  if (file.encrypted && !key) throw new RecordingKeyMissingError();

  let handle = await openChecked(file);
  try {
    const etag = file.sha256 ? `"${file.sha256}"` : undefined;
    const range = chooseRange(req, file.size, etag);
    const common = (): void => {
      res.setHeader('Accept-Ranges', 'bytes');
      res.setHeader('Cache-Control', 'private, no-store');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      if (etag) res.setHeader('ETag', etag);
    };
    if (range === 'unsatisfiable') {
      common();
      res.status(416);
      res.setHeader('Content-Range', `bytes */${file.size}`);
      res.setHeader('Content-Length', '0');
      res.end();
      return;
    }
    const { start, end } = range ?? { start: 0, end: file.size - 1 };

    // The first bytes are read before any header is set: until then, a failure is an ordinary error answer.
    let chunks: AsyncIterator<Buffer> | undefined;
    let first: IteratorResult<Buffer> | undefined;
    let stream: fs.ReadStream | undefined;
    if (req.method === 'GET' && end >= start) {
      const source = file.encrypted
        ? decryptRange(file.path, key!, start, end)
        : (stream = fs.createReadStream(file.path, { fd: handle!, start, end, autoClose: true }));
      handle = undefined; // the stream owns it now
      chunks = source[Symbol.asyncIterator]();
      first = await chunks.next();
    }

    common();
    res.status(range ? 206 : 200);
    res.setHeader('Content-Type', file.contentType);
    res.setHeader('Content-Length', String(end - start + 1));
    res.setHeader('Content-Disposition', contentDisposition(file.downloadName));
    if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${file.size}`);
    if (!chunks || !first) {
      res.end();
      return;
    }

    const rest = chunks;
    const firstChunk = first;
    async function* body(): AsyncGenerator<Buffer> {
      try {
        if (firstChunk.done) return;
        yield firstChunk.value;
        for (;;) {
          const next = await rest.next();
          if (next.done) return;
          yield next.value;
        }
      } finally {
        await rest.return?.(); // destroys the source: stops reading, closes the file
      }
    }
    try {
      await pipeline(body(), res);
    } catch (err) {
      // The headers are out: the response was destroyed and cannot say more.
      if (isClientGone(err) && !(err instanceof RecordingIntegrityError)) {
        req.log?.debug({ path: req.path }, 'recording download ended by the client');
      } else {
        req.log?.error({ err, path: req.path }, 'recording stream failed; response destroyed');
        res.destroy();
      }
    } finally {
      // Whatever ended the answer (even a response gone before the body was first read), the source
      // is destroyed and its file closed before this resolves: destroying a read stream closes its
      // descriptor asynchronously, so wait for that.
      await rest.return?.();
      if (stream && !stream.closed) await once(stream, 'close');
    }
  } finally {
    await handle?.close();
  }
}
