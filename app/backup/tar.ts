/**
 * The few parts of the POSIX tar format (ustar) a backup needs: regular
 * files only, written one after the other as streams (never held in
 * memory), and read back by position. Archives are readable by any tar
 * (`tar tvf backup.tar`). Sizes above 8 GiB use the GNU base-256 size field,
 * which GNU tar and bsdtar read too.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { once } from 'node:events';
import { Readable } from 'node:stream';

const BLOCK = 512;
const MAX_OCTAL_SIZE = 0o77777777777;

export class TarFormatError extends Error {}

/** Splits a path into ustar's `prefix` (155) and `name` (100) fields. */
function splitName(name: string): { prefix: string; base: string } {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', base: name };
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const base = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(base) <= 100) return { prefix, base };
  }
  throw new TarFormatError(`path too long for the archive: ${name}`);
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(value.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'ascii');
}

function header(name: string, size: number, mode: number, mtime: Date): Buffer {
  const block = Buffer.alloc(BLOCK);
  const { prefix, base } = splitName(name);
  block.write(base, 0, 100, 'utf8');
  writeOctal(block, 100, 8, mode & 0o7777);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  if (size <= MAX_OCTAL_SIZE) writeOctal(block, 124, 12, size);
  else {
    block[124] = 0x80;
    let rest = BigInt(size);
    for (let i = 135; i > 124; i--) {
      block[i] = Number(rest & 0xffn);
      rest >>= 8n;
    }
  }
  writeOctal(block, 136, 12, Math.floor(mtime.getTime() / 1000));
  block.write('        ', 148, 8, 'ascii');
  block.write('0', 156, 1, 'ascii');
  block.write('ustar\0', 257, 6, 'ascii');
  block.write('00', 263, 2, 'ascii');
  block.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return block;
}

export interface WrittenEntry {
  name: string;
  bytes: number;
  sha256: string;
}

/** Writes a tar archive to a file, entry by entry. */
export class TarWriter {
  private readonly out: fs.WriteStream;
  private failed: Error | undefined;

  constructor(file: string) {
    this.out = fs.createWriteStream(file, { flags: 'wx', mode: 0o600 });
    this.out.on('error', (err) => {
      this.failed = err;
    });
  }

  private async write(chunk: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.out.write(chunk)) {
      await Promise.race([once(this.out, 'drain'), once(this.out, 'error')]);
      if (this.failed) throw this.failed;
    }
  }

  /** Adds a file of exactly `size` bytes from `source`; answers the SHA-256 of what was written. */
  async add(name: string, size: number, source: Readable, options: { mode?: number; mtime?: Date } = {}): Promise<WrittenEntry> {
    await this.write(header(name, size, options.mode ?? 0o600, options.mtime ?? new Date()));
    const hash = crypto.createHash('sha256');
    let written = 0;
    for await (const chunk of source as AsyncIterable<Buffer>) {
      written += chunk.length;
      if (written > size) {
        source.destroy();
        throw new TarFormatError(`${name} grew while it was being archived`);
      }
      hash.update(chunk);
      await this.write(chunk);
    }
    if (written !== size) throw new TarFormatError(`${name} shrank while it was being archived`);
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (padding) await this.write(Buffer.alloc(padding));
    return { name, bytes: size, sha256: hash.digest('hex') };
  }

  /** Adds a file from disk. */
  async addFile(name: string, file: string): Promise<WrittenEntry> {
    const stat = await fs.promises.stat(file);
    return this.add(name, stat.size, fs.createReadStream(file), { mode: stat.mode, mtime: stat.mtime });
  }

  /** Writes the end-of-archive marker, flushes to disk and closes the file. */
  async finish(): Promise<void> {
    await this.write(Buffer.alloc(BLOCK * 2));
    await new Promise<void>((resolve, reject) => this.out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const handle = await fs.promises.open(this.out.path as string, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Closes the file without finishing it (after a failure). */
  async abort(): Promise<void> {
    if (this.out.closed) return;
    await new Promise<void>((resolve) => this.out.destroy().once('close', () => resolve()));
  }
}

export interface TarEntry {
  name: string;
  size: number;
  /** Byte offset of the entry's data in the archive. */
  offset: number;
}

function readOctal(block: Buffer, offset: number, length: number): number {
  if (block[offset]! & 0x80) {
    let value = 0n;
    for (let i = offset + 1; i < offset + length; i++) value = (value << 8n) | BigInt(block[i]!);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarFormatError('entry size out of range');
    return Number(value);
  }
  const text = block.toString('ascii', offset, offset + length).replace(/\0.*$/s, '').trim();
  if (!/^[0-7]*$/.test(text)) throw new TarFormatError('damaged tar header');
  return text === '' ? 0 : parseInt(text, 8);
}

function cString(block: Buffer, offset: number, length: number): string {
  const raw = block.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.toString('utf8', 0, end === -1 ? length : end);
}

/**
 * Lists the regular files of an archive (names, sizes, where their data
 * starts) without reading the data. Anything but regular files, a broken
 * header checksum or a truncated archive throws TarFormatError.
 */
export async function listTar(file: string): Promise<TarEntry[]> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const { size: total } = await handle.stat();
    const entries: TarEntry[] = [];
    const block = Buffer.alloc(BLOCK);
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(block, 0, BLOCK, position);
      if (bytesRead < BLOCK) throw new TarFormatError('the archive is truncated (no end marker)');
      if (block.every((b) => b === 0)) return entries;
      const stored = readOctal(block, 148, 8);
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
      if (sum !== stored) throw new TarFormatError(`damaged tar header at byte ${position}`);
      const type = String.fromCharCode(block[156]!);
      if (type !== '0' && type !== '\0') throw new TarFormatError(`unexpected entry type "${type}" at byte ${position}`);
      const prefix = cString(block, 345, 155);
      const base = cString(block, 0, 100);
      const size = readOctal(block, 124, 12);
      const offset = position + BLOCK;
      if (offset + size > total) throw new TarFormatError('the archive is truncated');
      entries.push({ name: prefix ? `${prefix}/${base}` : base, size, offset });
      position = offset + Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    await handle.close();
  }
}

/** The data of one entry, streamed. */
export function entryStream(file: string, entry: TarEntry): Readable {
  if (entry.size === 0) return Readable.from([]);
  return fs.createReadStream(file, { start: entry.offset, end: entry.offset + entry.size - 1 });
}
