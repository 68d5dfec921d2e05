import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import { MediaError } from '../errors';

/**
 * The recorder's local UDP ports (ffmpeg listens on them, on 127.0.0.1).
 * Each stream takes an even base port p: RTP on p, RTCP on p + 1.
 * Allocation is per process; a pair that another process holds (a bind
 * on 127.0.0.1 fails) is skipped. Allocation goes round the range, so a
 * port just released is the last to be handed out again.
 */
export class PortAllocator {
  private readonly taken = new Set<number>();
  private next: number;
  private readonly first: number;

  constructor(readonly min: number, readonly max: number) {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 65535) throw new RangeError(`invalid recording port range ${min}-${max}`);
    this.first = min % 2 === 0 ? min : min + 1;
    if (this.first + 1 > max) throw new RangeError(`the recording port range ${min}-${max} holds no even/odd pair`);
    this.next = this.first;
  }

  /** How many pairs the range holds. */
  get capacity(): number {
    return Math.floor((this.max - this.first + 1) / 2);
  }

  get inUse(): number {
    return this.taken.size;
  }

  /** An even port p with p and p + 1 free; throws MediaError('no_ports') when none is. */
  async take(): Promise<number> {
    for (let tried = 0; tried < this.capacity; tried++) {
      const port = this.next;
      this.next = port + 3 > this.max ? this.first : port + 2;
      if (this.taken.has(port)) continue;
      // Reserved before the asynchronous check, so a concurrent take() skips it.
      this.taken.add(port);
      if ((await bindable(port)) && (await bindable(port + 1))) return port;
      this.taken.delete(port);
    }
    throw new MediaError('no_ports');
  }

  release(port: number): void {
    this.taken.delete(port);
  }
}

/** Whether a UDP socket can be bound to 127.0.0.1:port right now (it is closed again at once). */
export function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/** The local UDP ports bound on this machine (IPv4 and IPv6), from /proc/net/udp*. Undefined where /proc is unavailable. */
export async function boundUdpPorts(): Promise<Set<number> | undefined> {
  const ports = new Set<number>();
  let readable = false;
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    const text = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    readable = true;
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      const port = local?.split(':')[1];
      if (port) ports.add(parseInt(port, 16));
    }
  }
  return readable ? ports : undefined;
}

/**
 * Resolves once every port is bound (checked every 20 ms); rejects when
 * `gone` settles first or after `timeoutMs`. Without /proc it waits a
 * fixed 300 ms instead.
 */
export async function waitUntilBound(ports: number[], options: { timeoutMs: number; gone: Promise<unknown> }): Promise<void> {
  let ended = false;
  void options.gone.then(
    () => (ended = true),
    () => (ended = true),
  );
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (ended) throw new Error('the process ended before its ports were bound');
    const bound = await boundUdpPorts();
    if (!bound) {
      await new Promise((r) => setTimeout(r, 300));
      return;
    }
    if (ports.every((p) => bound.has(p))) return;
    if (Date.now() > deadline) throw new Error(`ports ${ports.join(', ')} not bound within ${options.timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
