import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import express, { type ErrorRequestHandler, type Express } from 'express';
import pino from 'pino';
import request from 'supertest';
import { AppError } from '../app/core/errors';
import {
  DEFAULT_CHUNK_SIZE,
  HEADER_SIZE,
  RecordingIntegrityError,
  RecordingKeyError,
  TAG_SIZE,
  decryptRange,
  encryptFile,
  encryptedFileSize,
  encryptedPlainSize,
  parseRecordingKey,
} from '../app/recordings/crypto';
import { sendRecordingFile, type RecordingFileToSend } from '../app/recordings/send';
import {
  DiskFullError,
  assertDiskSpace,
  finaliseFile,
  freeBytes,
  recordingDir,
  recordingsDir,
  removeRecordingFiles,
  sha256File,
} from '../app/recordings/storage';

const C = DEFAULT_CHUNK_SIZE;
const KEY = crypto.randomBytes(32);
const sha256 = (data: Buffer) => crypto.createHash('sha256').update(data).digest('hex');

// A small seeded generator, so that a failing range can be found again.
let seed = 0x5eed1234;
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x100000000;
}
const randomInt = (below: number) => Math.floor(random() * below);

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads until the stream ends or fails; what it yielded before failing is kept. */
async function readUntilError(stream: Readable): Promise<{ data: Buffer; error: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return { data: Buffer.concat(chunks), error: undefined };
  } catch (error) {
    return { data: Buffer.concat(chunks), error };
  }
}

/** Open file descriptors of this process that point at `file` (Linux). */
function openDescriptors(file: string): number {
  let count = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === file) count++;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

/**
 * Counts the bytes read through any fs.promises FileHandle (which is how
 * encrypted recordings are read) until restored.
 */
async function countFileHandleReads(): Promise<{ bytes: () => number; restore: () => void }> {
  const probe = await fs.promises.open(__filename, 'r');
  const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
  await probe.close();
  const original = proto.read;
  let total = 0;
  proto.read = async function (this: unknown, ...args: unknown[]) {
    const result = await original.apply(this, args);
    total += result.bytesRead;
    return result;
  };
  return { bytes: () => total, restore: () => { proto.read = original; } };
}

describe('recording storage', () => {
  let tmp: string;
  let n = 0;
  const tmpFile = (name = 'f') => path.join(tmp, `${name}-${++n}`);

  function writeFile(data: Buffer): string {
    const file = tmpFile('plain');
    fs.writeFileSync(file, data);
    return file;
  }

  async function encrypted(data: Buffer, key = KEY): Promise<string> {
    const dest = tmpFile('enc');
    const { plainSize, sha256: hash } = await encryptFile(writeFile(data), dest, key);
    assert.equal(plainSize, data.length);
    assert.equal(hash, sha256(data));
    return dest;
  }

  /** A copy of an encrypted file, changed by `edit`. */
  function tampered(file: string, edit: (bytes: Buffer) => Buffer): string {
    const copy = tmpFile('tampered');
    fs.writeFileSync(copy, edit(Buffer.from(fs.readFileSync(file))));
    return copy;
  }
  const chunkOffset = (i: number) => HEADER_SIZE + i * (C + TAG_SIZE);

  before(() => {
    tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-recordings-')));
  });

  after(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('the recording key', () => {
    const raw = crypto.randomBytes(32);

    it('is read from 64 hex digits, either case', () => {
      assert.deepEqual(parseRecordingKey(raw.toString('hex')), raw);
      assert.deepEqual(parseRecordingKey(raw.toString('hex').toUpperCase()), raw);
    });

    it('is read from base64 and base64url, with or without padding, ignoring a final newline', () => {
      assert.deepEqual(parseRecordingKey(raw.toString('base64')), raw);
      assert.deepEqual(parseRecordingKey(`${raw.toString('base64')}\n`), raw);
      assert.deepEqual(parseRecordingKey(raw.toString('base64url')), raw);
      assert.deepEqual(parseRecordingKey(`${raw.toString('base64url')}=`), raw);
    });

    it('refuses other lengths and forms with a message that does not contain the key', () => {
      const wrong = [
        raw.toString('hex').slice(0, 62),
        `${raw.toString('hex')}ab`,
        crypto.randomBytes(31).toString('base64'),
        crypto.randomBytes(33).toString('base64'),
        crypto.randomBytes(48).toString('base64'),
        // base64 of 32 bytes whose last character carries non-zero spare bits
        `${raw.toString('base64').slice(0, 42)}${raw.toString('base64')[42] === 'B' ? 'C' : 'B'}=`,
        `${raw.toString('hex').slice(0, 63)}g`,
        'correct horse battery staple correct horse battery staple',
        '',
      ];
      for (const text of wrong) {
        assert.throws(() => parseRecordingKey(text), (err: unknown) => {
          assert.ok(err instanceof RecordingKeyError);
          if (text.length >= 8) {
            for (let i = 0; i + 8 <= text.length; i++) assert.ok(!err.message.includes(text.slice(i, i + 8)), 'the message leaks part of the key');
          }
          return true;
        }, text.slice(0, 6));
      }
    });
  });

  describe('encrypted files', () => {
    let big: Buffer;
    let bigFile: string;

    before(async () => {
      big = crypto.randomBytes(3 * 1024 * 1024 + 12345);
      bigFile = await encrypted(big);
    });

    for (const size of [0, 1, C - 1, C, C + 1]) {
      it(`round-trips ${size} bytes`, async () => {
        const data = crypto.randomBytes(size);
        const file = await encrypted(data);
        assert.equal(await encryptedPlainSize(file), size);
        assert.equal(fs.statSync(file).size, encryptedFileSize(size));
        assert.ok(!fs.existsSync(`${file}.tmp`));
        if (size > 0) assert.deepEqual(await readAll(decryptRange(file, KEY, 0, size - 1)), data);
      });
    }

    it('round-trips about 3 MB and never writes the plaintext', async () => {
      assert.equal(await encryptedPlainSize(bigFile), big.length);
      assert.deepEqual(await readAll(decryptRange(bigFile, KEY, 0, big.length - 1)), big);
      const stored = fs.readFileSync(bigFile);
      assert.equal(stored.indexOf(big.subarray(1000, 1032)), -1);
    });

    it('uses a new file id for every file, so equal plaintexts give different files', async () => {
      const data = Buffer.alloc(1000, 7);
      const a = fs.readFileSync(await encrypted(data));
      const b = fs.readFileSync(await encrypted(data));
      assert.notDeepEqual(a.subarray(24, 40), b.subarray(24, 40));
      assert.notDeepEqual(a.subarray(HEADER_SIZE), b.subarray(HEADER_SIZE));
    });

    it('answers every range with exactly that slice of the plaintext', async () => {
      const last = big.length - 1;
      const ranges: Array<[number, number]> = [
        [0, 0], [0, last], [last, last], [C - 1, C - 1], [C - 1, C], [C, C], [C, 2 * C - 1], [C - 1, 2 * C],
        [15 * C + 5, 17 * C + 3], [16 * C - 1, 16 * C], [47 * C, last], [last - C, last], [3, C + 5],
      ];
      for (let i = 0; i < 150; i++) {
        const start = randomInt(big.length);
        const length = random() < 0.5 ? 1 + randomInt(3 * C) : 1 + randomInt(big.length - start);
        ranges.push([start, Math.min(last, start + length - 1)]);
      }
      for (const [start, end] of ranges) {
        const got = await readAll(decryptRange(bigFile, KEY, start, end));
        assert.ok(got.equals(big.subarray(start, end + 1)), `range ${start}-${end}`);
      }
    });

    it('refuses ranges outside the file', async () => {
      assert.throws(() => decryptRange(bigFile, KEY, 5, 4), RangeError);
      assert.throws(() => decryptRange(bigFile, KEY, -1, 4), RangeError);
      await assert.rejects(readAll(decryptRange(bigFile, KEY, 0, big.length)), RangeError);
    });

    describe('when altered', () => {
      async function assertRefused(file: string, start = 0, end = big.length - 1): Promise<void> {
        const { data, error } = await readUntilError(decryptRange(file, KEY, start, end));
        assert.ok(error instanceof RecordingIntegrityError, `expected an integrity error, got ${String(error)}`);
        // Whatever came before the failure is authentic plaintext.
        assert.ok(data.equals(big.subarray(start, start + data.length)), 'unauthenticated bytes were yielded');
      }

      it('a flipped byte in a chunk fails that chunk, and nothing of it is yielded', async () => {
        const file = tampered(bigFile, (b) => { b[chunkOffset(2) + 100]! ^= 0x01; return b; });
        const { data, error } = await readUntilError(decryptRange(file, KEY, 0, big.length - 1));
        assert.ok(error instanceof RecordingIntegrityError);
        assert.ok(data.length <= 2 * C);
        assert.ok(data.equals(big.subarray(0, data.length)));
        await assertRefused(file, 2 * C + 5, 2 * C + 10);
        // Chunks not touched by a range are not read.
        assert.ok((await readAll(decryptRange(file, KEY, 0, 99))).equals(big.subarray(0, 100)));
      });

      it('a flipped byte in a tag fails', async () => {
        await assertRefused(tampered(bigFile, (b) => { b[chunkOffset(1) + C + 3]! ^= 0x80; return b; }), C, C + 10);
      });

      it('two swapped chunks fail', async () => {
        const file = tampered(bigFile, (b) => {
          const one = Buffer.from(b.subarray(chunkOffset(1), chunkOffset(2)));
          b.copy(b, chunkOffset(1), chunkOffset(2), chunkOffset(3));
          one.copy(b, chunkOffset(2));
          return b;
        });
        await assertRefused(file, C, 3 * C - 1);
        await assertRefused(file);
      });

      it('a truncated or extended file fails, even for a range at its start', async () => {
        await assertRefused(tampered(bigFile, (b) => b.subarray(0, b.length - 1)), 0, 10);
        await assertRefused(tampered(bigFile, (b) => b.subarray(0, chunkOffset(10))), 0, 10);
        await assertRefused(tampered(bigFile, (b) => Buffer.concat([b, Buffer.alloc(16)])), 0, 10);
        await assert.rejects(encryptedPlainSize(tampered(bigFile, (b) => b.subarray(0, b.length - 1))), RecordingIntegrityError);
      });

      it('dropping the final chunk and shortening the header to match fails', async () => {
        const chunks = Math.ceil(big.length / C);
        const file = tampered(bigFile, (b) => {
          const cut = Buffer.from(b.subarray(0, chunkOffset(chunks - 1)));
          cut.writeBigUInt64BE(BigInt((chunks - 1) * C), 16);
          return cut;
        });
        const { error } = await readUntilError(decryptRange(file, KEY, 0, (chunks - 1) * C - 1));
        assert.ok(error instanceof RecordingIntegrityError);
      });

      it('a changed header fails', async () => {
        await assertRefused(tampered(bigFile, (b) => { b[30]! ^= 0x01; return b; }), 0, 10); // file id
        await assertRefused(tampered(bigFile, (b) => { b[0] = 0x58; return b; }), 0, 10); // magic
      });

      it('a wrong key fails', async () => {
        const { data, error } = await readUntilError(decryptRange(bigFile, crypto.randomBytes(32), 0, 1000));
        assert.ok(error instanceof RecordingIntegrityError);
        assert.equal(data.length, 0);
      });
    });
  });

  describe('finalising a recording', () => {
    const org = crypto.randomUUID();

    it('moves the plain file and keeps the SHA-256 of its bytes', async () => {
      const data = crypto.randomBytes(200_000);
      const src = writeFile(data);
      const dir = recordingDir(tmp, org, crypto.randomUUID());
      const result = await finaliseFile(src, dir, null);
      assert.deepEqual(result, { path: path.join(dir, 'recording.mp4'), size: data.length, sha256: sha256(data), encrypted: false });
      assert.equal(await sha256File(result.path), sha256(data));
      assert.ok(!fs.existsSync(src));
    });

    it('encrypts with a key, keeps the SHA-256 of the plaintext, and removes the plaintext', async () => {
      const data = crypto.randomBytes(300_001);
      const src = writeFile(data);
      const dir = recordingDir(tmp, org, crypto.randomUUID());
      const result = await finaliseFile(src, dir, KEY);
      assert.deepEqual(result, { path: path.join(dir, 'recording.mp4.enc'), size: data.length, sha256: sha256(data), encrypted: true });
      assert.ok(!fs.existsSync(src));
      assert.deepEqual(fs.readdirSync(dir), ['recording.mp4.enc']);
      assert.equal(sha256(await readAll(decryptRange(result.path, KEY, 0, data.length - 1))), result.sha256);
    });

    it('hashes a file by streaming it', async () => {
      const data = crypto.randomBytes(1_000_000);
      assert.equal(await sha256File(writeFile(data)), sha256(data));
    });
  });

  describe('disk space', () => {
    it('tells the free space, also for a directory that does not exist yet, creating nothing', async () => {
      assert.ok((await freeBytes(tmp)) > 0);
      const absent = path.join(tmp, 'not', 'yet');
      assert.ok((await freeBytes(absent)) > 0);
      assert.ok(!fs.existsSync(path.join(tmp, 'not')));
    });

    it('refuses with DiskFullError below the reserve', async () => {
      await assertDiskSpace(tmp, 0);
      const reserve = 1_000_000_000; // MiB: about a petabyte
      await assert.rejects(assertDiskSpace(tmp, reserve), (err: unknown) => {
        assert.ok(err instanceof DiskFullError);
        assert.equal(err.code, 'disk_full');
        assert.equal(err.requiredBytes, reserve * 1024 * 1024);
        assert.ok(err.freeBytes >= 0 && err.freeBytes < err.requiredBytes);
        return true;
      });
    });
  });

  describe('recording paths', () => {
    const org = crypto.randomUUID();
    const rec = crypto.randomUUID();

    it('live under <dataDir>/recordings/<organisation>/<recording>', () => {
      assert.equal(recordingsDir(tmp), path.join(tmp, 'recordings'));
      assert.equal(recordingDir(tmp, org, rec), path.join(tmp, 'recordings', org, rec));
    });

    it('refuse ids that are not UUIDs', () => {
      for (const bad of ['', '..', '../..', 'x', `${org}/..`, `../${org}`, `${org}\0`, ` ${org}`, '/etc']) {
        assert.throws(() => recordingDir(tmp, bad, rec), TypeError, JSON.stringify(bad));
        assert.throws(() => recordingDir(tmp, org, bad), TypeError, JSON.stringify(bad));
      }
    });

    it('are removed one recording at a time', async () => {
      const other = crypto.randomUUID();
      for (const id of [rec, other]) {
        fs.mkdirSync(path.join(recordingDir(tmp, org, id), 'tracks'), { recursive: true });
        fs.writeFileSync(path.join(recordingDir(tmp, org, id), 'tracks', 'a.webm'), 'x');
      }
      await removeRecordingFiles(tmp, org, rec);
      assert.ok(!fs.existsSync(recordingDir(tmp, org, rec)));
      assert.ok(fs.existsSync(path.join(recordingDir(tmp, org, other), 'tracks', 'a.webm')));
      await removeRecordingFiles(tmp, org, rec); // absent is fine
      await assert.rejects(removeRecordingFiles(tmp, org, '..'), TypeError);
    });
  });

  describe('sending over HTTP', () => {
    const data = crypto.randomBytes(5 * C + 1234);
    const size = data.length;
    let files: Record<string, RecordingFileToSend>;
    let logLines: Array<Record<string, unknown>>;
    /** Resolves when the handler of the last request finished. */
    let handled: Promise<{ bytesWritten: number }>;

    function makeApp(key: Buffer | null): Express {
      const app = express();
      const logger = pino({ level: 'debug' }, new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
          done();
        },
      }));
      app.get('/r/:name', async (req, res) => {
        req.log = logger;
        let finish!: (value: { bytesWritten: number }) => void;
        handled = new Promise((resolve) => { finish = resolve; });
        try {
          const file = files[String(req.params.name)]!;
          const downloadName = typeof req.query.download === 'string' ? req.query.download : undefined;
          await sendRecordingFile(req, res, { ...file, downloadName }, key);
        } finally {
          finish({ bytesWritten: req.socket.bytesWritten });
        }
      });
      const onError: ErrorRequestHandler = (err, _req, res, next) => {
        if (res.headersSent) return next(err);
        res.status(err instanceof AppError ? err.status : 500).json({ code: err instanceof AppError ? err.code : 'internal_error' });
      };
      app.use(onError);
      return app;
    }

    const binary = (res: request.Response, callback: (err: Error | null, body: Buffer) => void) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => callback(null, Buffer.concat(chunks)));
    };

    const get = (app: Express, url: string, headers: Record<string, string> = {}) => request(app).get(url).set(headers).buffer(true).parse(binary);

    before(async () => {
      logLines = [];
      const plainPath = writeFile(data);
      const encPath = await encrypted(data);
      const big = crypto.randomBytes(24 * 1024 * 1024);
      files = {
        plain: { path: plainPath, encrypted: false, size, contentType: 'video/mp4', sha256: sha256(data) },
        enc: { path: encPath, encrypted: true, size, contentType: 'video/mp4', sha256: sha256(data) },
        empty: { path: writeFile(Buffer.alloc(0)), encrypted: false, size: 0, contentType: 'video/mp4' },
        emptyEnc: { path: await encrypted(Buffer.alloc(0)), encrypted: true, size: 0, contentType: 'video/mp4' },
        tampered: { path: tampered(encPath, (b) => { b[chunkOffset(3) + 7]! ^= 0x10; return b; }), encrypted: true, size, contentType: 'video/mp4' },
        firstChunkTampered: { path: tampered(encPath, (b) => { b[chunkOffset(0) + 7]! ^= 0x10; return b; }), encrypted: true, size, contentType: 'video/mp4' },
        wrongSize: { path: plainPath, encrypted: false, size: size + 1, contentType: 'video/mp4' },
        wrongSizeEnc: { path: encPath, encrypted: true, size: size - 1, contentType: 'video/mp4' },
        missing: { path: path.join(tmp, 'no-such-file'), encrypted: false, size, contentType: 'video/mp4' },
        big: { path: await encrypted(big), encrypted: true, size: big.length, contentType: 'video/mp4' },
      };
    });

    beforeEach(() => {
      logLines = [];
    });

    for (const kind of ['plain', 'enc'] as const) {
      describe(kind === 'plain' ? 'a plain file' : 'an encrypted file', () => {
        let app: Express;
        before(() => {
          app = makeApp(KEY);
        });

        it('answers GET with the whole file, Accept-Ranges and private, no-store', async () => {
          const res = await get(app, `/r/${kind}`)
            .expect(200)
            .expect('Accept-Ranges', 'bytes')
            .expect('Content-Type', 'video/mp4')
            .expect('Content-Length', String(size))
            .expect('Cache-Control', 'private, no-store')
            .expect('X-Content-Type-Options', 'nosniff')
            .expect('Content-Disposition', 'inline')
            .expect('ETag', `"${sha256(data)}"`);
          assert.ok((res.body as Buffer).equals(data));
        });

        it('answers Range: bytes=0-99 with 206 and exactly 100 bytes', async () => {
          const res = await get(app, `/r/${kind}`, { Range: 'bytes=0-99' })
            .expect(206).expect('Content-Range', `bytes 0-99/${size}`).expect('Content-Length', '100');
          assert.ok((res.body as Buffer).equals(data.subarray(0, 100)));
        });

        it('answers a suffix range with the last bytes', async () => {
          const res = await get(app, `/r/${kind}`, { Range: 'bytes=-500' })
            .expect(206).expect('Content-Range', `bytes ${size - 500}-${size - 1}/${size}`);
          assert.ok((res.body as Buffer).equals(data.subarray(size - 500)));
        });

        it('answers an open-ended range from its start to the end, across chunk boundaries', async () => {
          const from = C - 10;
          const res = await get(app, `/r/${kind}`, { Range: `bytes=${from}-` })
            .expect(206).expect('Content-Range', `bytes ${from}-${size - 1}/${size}`).expect('Content-Length', String(size - from));
          assert.ok((res.body as Buffer).equals(data.subarray(from)));
        });

        it('clips a range that runs past the end', async () => {
          const res = await get(app, `/r/${kind}`, { Range: `bytes=${size - 10}-${size + 1000}` }).expect(206);
          assert.ok((res.body as Buffer).equals(data.subarray(size - 10)));
        });

        it('answers 416 with bytes */size for a range beyond the end', async () => {
          await get(app, `/r/${kind}`, { Range: `bytes=${size}-` }).expect(416).expect('Content-Range', `bytes */${size}`);
          await get(app, `/r/${kind}`, { Range: `bytes=${size + 5}-${size + 10}` }).expect(416);
        });

        it('answers several disjoint ranges with the whole file, and merges overlapping ones', async () => {
          const whole = await get(app, `/r/${kind}`, { Range: 'bytes=0-9,500-599' }).expect(200);
          assert.ok((whole.body as Buffer).equals(data));
          const merged = await get(app, `/r/${kind}`, { Range: 'bytes=0-9,5-19' }).expect(206).expect('Content-Range', `bytes 0-19/${size}`);
          assert.ok((merged.body as Buffer).equals(data.subarray(0, 20)));
        });

        it('ignores malformed ranges and other units', async () => {
          await get(app, `/r/${kind}`, { Range: 'bytes=abc' }).expect(200).expect('Content-Length', String(size));
          await get(app, `/r/${kind}`, { Range: 'items=0-1' }).expect(200);
        });

        it('honours If-Range only with the current ETag', async () => {
          await get(app, `/r/${kind}`, { Range: 'bytes=0-9', 'If-Range': `"${sha256(data)}"` }).expect(206);
          await get(app, `/r/${kind}`, { Range: 'bytes=0-9', 'If-Range': '"something-else"' }).expect(200).expect('Content-Length', String(size));
          await get(app, `/r/${kind}`, { Range: 'bytes=0-9', 'If-Range': 'Tue, 01 Jan 2030 00:00:00 GMT' }).expect(200);
        });

        it('answers HEAD with the headers and no body', async () => {
          const res = await request(app).head(`/r/${kind}`).expect(200).expect('Content-Length', String(size)).expect('Accept-Ranges', 'bytes');
          assert.deepEqual(res.body, {});
          await request(app).head(`/r/${kind}`).set('Range', 'bytes=10-19').expect(206).expect('Content-Range', `bytes 10-19/${size}`).expect('Content-Length', '10');
        });

        it('offers a download under the given name', async () => {
          await get(app, `/r/${kind}?download=call-2030-01-01.mp4`).expect(200).expect('Content-Disposition', 'attachment; filename="call-2030-01-01.mp4"');
          await get(app, `/r/${kind}?download=${encodeURIComponent('Gespräch "1".mp4')}`)
            .expect('Content-Disposition', `attachment; filename="Gespr_ch _1_.mp4"; filename*=UTF-8''Gespr%C3%A4ch%20%221%22.mp4`);
        });
      });
    }

    it('sends identical bytes for the plain and the encrypted file, range by range', async () => {
      const app = makeApp(KEY);
      const ranges = ['bytes=0-', `bytes=${C}-${C}`, `bytes=${C - 1}-${2 * C}`, 'bytes=-1', `bytes=${3 * C + 17}-${5 * C + 3}`];
      for (let i = 0; i < 10; i++) {
        const start = randomInt(size);
        ranges.push(`bytes=${start}-${start + randomInt(size - start)}`);
      }
      for (const range of ranges) {
        const plain = await get(app, '/r/plain', { Range: range });
        const enc = await get(app, '/r/enc', { Range: range });
        assert.equal(plain.status, enc.status, range);
        assert.equal(plain.headers['content-range'], enc.headers['content-range'], range);
        assert.ok((plain.body as Buffer).equals(enc.body as Buffer), range);
      }
    });

    it('sends an empty recording as 200 with no bytes, and refuses ranges of it with 416', async () => {
      const app = makeApp(KEY);
      for (const name of ['empty', 'emptyEnc']) {
        const res = await get(app, `/r/${name}`).expect(200).expect('Content-Length', '0');
        assert.equal((res.body as Buffer).length, 0);
        await get(app, `/r/${name}`, { Range: 'bytes=0-' }).expect(416).expect('Content-Range', 'bytes */0');
      }
    });

    it('refuses an encrypted file without a key, before any header', async () => {
      const res = await get(makeApp(null), '/r/enc').expect(503);
      assert.equal(JSON.parse((res.body as Buffer).toString()).code, 'recording_key_missing');
      assert.equal(res.headers['accept-ranges'], undefined);
      await get(makeApp(null), '/r/plain').expect(200);
    });

    it('answers an error, not a broken download, when the file is missing, has the wrong size, or its first chunk fails', async () => {
      for (const name of ['missing', 'wrongSize', 'wrongSizeEnc', 'firstChunkTampered']) {
        const res = await get(makeApp(KEY), `/r/${name}?download=x.mp4`, { Range: 'bytes=5-' }).expect(500);
        assert.equal(JSON.parse((res.body as Buffer).toString()).code, 'internal_error', name);
        for (const header of ['content-disposition', 'content-range', 'accept-ranges']) assert.equal(res.headers[header], undefined, `${name}: ${header}`);
      }
      const wrongKey = await get(makeApp(crypto.randomBytes(32)), '/r/enc').expect(500);
      assert.equal(JSON.parse((wrongKey.body as Buffer).toString()).code, 'internal_error');
    });

    async function listen(app: Express): Promise<{ server: http.Server; url: string }> {
      const server = http.createServer(app);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    }

    it('breaks the download when a later chunk fails, sends only authentic bytes, and logs it', async () => {
      const { server, url } = await listen(makeApp(KEY));
      try {
        const received: Buffer[] = [];
        const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${url}/r/tampered`, resolve).on('error', reject));
        assert.equal(res.statusCode, 200);
        res.on('data', (chunk: Buffer) => received.push(chunk));
        await assert.rejects(finished(res));
        await handled;
        const got = Buffer.concat(received);
        assert.ok(!res.complete);
        assert.ok(got.length <= 3 * C, `${got.length} bytes received`);
        assert.ok(got.equals(data.subarray(0, got.length)), 'bytes that are not the plaintext were sent');
        const logged = logLines.find((line) => line.msg === 'recording stream failed; response destroyed');
        assert.ok(logged, 'the failure was not logged');
        assert.equal((logged.err as { type?: string }).type, 'RecordingIntegrityError');
      } finally {
        server.close();
      }
    });

    it('stops reading and closes the file when the client goes away', async () => {
      const { server, url } = await listen(makeApp(KEY));
      const reads = await countFileHandleReads();
      try {
        const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${url}/r/big`, resolve).on('error', reject));
        assert.equal(res.statusCode, 200);
        await new Promise((resolve) => res.once('data', resolve));
        res.pause();
        res.destroy();
        const { bytesWritten } = await handled;
        const size = files.big!.size;
        assert.ok(bytesWritten < size / 2, `${bytesWritten} of ${size} bytes were written`);
        assert.ok(reads.bytes() < size / 2, `${reads.bytes()} of ${size} bytes were read`);
        if (fs.existsSync('/proc/self/fd')) assert.equal(openDescriptors(files.big!.path), 0);
      } finally {
        reads.restore();
        server.close();
      }
    });
  });
});
