/**
 * Recording encryption benchmark: what encryption at rest costs compared
 * with handling the same file in plain.
 *
 *   npx tsx bench/recording-crypto.ts [MiB] [ranges]
 *
 * Writes a file of random bytes (256 MiB by default) to a temporary
 * directory and measures, in the same process, side by side:
 *
 * - encrypt: `encryptFile` (read, SHA-256, AES-256-GCM in 64 KiB chunks,
 *   write, fsync, rename) against the baseline, a streamed copy of the same
 *   file with fsync and rename;
 * - decrypt: reading the whole file through `decryptRange` against
 *   `fs.createReadStream`;
 * - ranges: 200 (default) random 1 MiB ranges, as a player seeking, each
 *   through `decryptRange` and through `fs.createReadStream` with start/end.
 *
 * Each row runs 3 rounds, the encrypted and the plain variant in turns
 * (which goes first alternates), and prints the median throughput (MB/s,
 * 10^6 bytes), the spread and the ratio encrypted/plain. The source file is
 * read once first, so reads come from the page cache for both; the writes
 * include fsync and so depend on the disk. No database, no network.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptRange, encryptFile } from '../app/recordings/crypto';

const MIB = 1024 * 1024;
const SIZE = Number(process.argv[2] ?? 256) * MIB;
const RANGES = Number(process.argv[3] ?? 200);
const RANGE_BYTES = MIB;
const ROUNDS = 3;
const KEY = crypto.randomBytes(32);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-bench-rec-'));
const plainFile = path.join(dir, 'plain.mp4');
const encFile = path.join(dir, 'recording.mp4.enc');

/** Writes `bytes` random bytes in 8 MiB pieces (constant memory). */
async function writeRandom(file: string, bytes: number): Promise<void> {
  const handle = await fs.promises.open(file, 'w');
  try {
    for (let done = 0; done < bytes; done += 8 * MIB) await handle.write(crypto.randomBytes(Math.min(8 * MIB, bytes - done)));
  } finally {
    await handle.close();
  }
}

/** Consumes a stream, counting its bytes. */
async function drain(stream: Readable): Promise<number> {
  let bytes = 0;
  await pipeline(stream, new Writable({ write(chunk: Buffer, _e, done) { bytes += chunk.length; done(); } }));
  return bytes;
}

async function plainCopy(src: string, dest: string): Promise<void> {
  const tmp = `${dest}.tmp`;
  await pipeline(fs.createReadStream(src, { highWaterMark: MIB }), fs.createWriteStream(tmp));
  const handle = await fs.promises.open(tmp, 'r+');
  await handle.sync();
  await handle.close();
  await fs.promises.rename(tmp, dest);
}

// The random ranges, the same for both variants.
const ranges: Array<[number, number]> = [];
for (let i = 0; i < RANGES; i++) {
  const start = crypto.randomInt(0, SIZE - RANGE_BYTES);
  ranges.push([start, start + RANGE_BYTES - 1]);
}

interface Variant { run: () => Promise<number> } // returns bytes handled
interface Row { name: string; encrypted: Variant; plain: Variant }

const rows: Row[] = [
  {
    name: 'encrypt (write + fsync)',
    encrypted: { run: async () => (await encryptFile(plainFile, encFile, KEY)).plainSize },
    plain: { run: async () => { await plainCopy(plainFile, path.join(dir, 'copy.mp4')); return SIZE; } },
  },
  {
    name: 'decrypt whole file',
    encrypted: { run: () => drain(decryptRange(encFile, KEY, 0, SIZE - 1)) },
    plain: { run: () => drain(fs.createReadStream(plainFile, { highWaterMark: 64 * 1024 })) },
  },
  {
    name: `${RANGES} random 1 MiB ranges`,
    encrypted: { run: async () => { let n = 0; for (const [s, e] of ranges) n += await drain(decryptRange(encFile, KEY, s, e)); return n; } },
    plain: { run: async () => { let n = 0; for (const [s, e] of ranges) n += await drain(fs.createReadStream(plainFile, { start: s, end: e })); return n; } },
  },
];

async function timed(variant: Variant): Promise<number> {
  const started = process.hrtime.bigint();
  const bytes = await variant.run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return bytes / 1e6 / seconds;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const spread = (values: number[]) => {
  const m = median(values);
  return Math.round((Math.max(...values.map((v) => Math.abs(v - m))) / m) * 100);
};
const fmt = (value: number) => Math.round(value).toLocaleString('en');

async function main(): Promise<void> {
  console.log(`file ${SIZE / MIB} MiB, ${ROUNDS} rounds, Node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'})`);
  await writeRandom(plainFile, SIZE);
  await drain(fs.createReadStream(plainFile)); // warm the page cache
  await encryptFile(plainFile, encFile, KEY);
  await drain(decryptRange(encFile, KEY, 0, SIZE - 1)); // warm-up

  console.log(`${'row'.padEnd(28)}${'encrypted MB/s'.padStart(18)}${'plain MB/s'.padStart(18)}${'ratio'.padStart(8)}`);
  for (const row of rows) {
    const enc: number[] = [];
    const plain: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 2 === 0) {
        enc.push(await timed(row.encrypted));
        plain.push(await timed(row.plain));
      } else {
        plain.push(await timed(row.plain));
        enc.push(await timed(row.encrypted));
      }
    }
    const e = median(enc);
    const p = median(plain);
    console.log(
      `${row.name.padEnd(28)}${`${fmt(e)} ±${spread(enc)}%`.padStart(18)}${`${fmt(p)} ±${spread(plain)}%`.padStart(18)}${`${(e / p).toFixed(2)}x`.padStart(8)}`,
    );
  }
  const overhead = fs.statSync(encFile).size - SIZE;
  console.log(`size on disk: +${overhead.toLocaleString('en')} bytes (${((overhead / SIZE) * 100).toFixed(3)} %) for header and tags`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
