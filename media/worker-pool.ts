import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { types } from 'mediasoup';
import { mediaCodecs } from './codecs';
import { loadMediasoup } from './load';
import type { MediaLogger } from './log';

export interface WorkerPoolOptions {
  workerBin: string;
  /** Number of workers; 0 means one per CPU core. */
  workers: number;
  /** Address the WebRtcServers listen on. */
  listenIp: string;
  /** Address announced to browsers in ICE candidates (needed when listening on 0.0.0.0). */
  announcedAddress?: string;
  /** Worker i listens on basePort + i, UDP and TCP. */
  basePort: number;
  /**
   * The UDP port range (on 127.0.0.1) of the workers' PlainTransports, which
   * send recorded media to ffmpeg; WebRTC uses the WebRtcServer's port and
   * is unaffected. Keep it apart from the recorder's own ports. Unset: mediasoup's
   * default, 10000-59999.
   */
  rtcMinPort?: number;
  rtcMaxPort?: number;
  logLevel: types.WorkerLogLevel;
  logger: MediaLogger;
}

export interface WorkerSlot {
  index: number;
  port: number;
  worker: types.Worker;
  webRtcServer: types.WebRtcServer;
  routers: Set<types.Router>;
}

/**
 * The mediasoup workers: one per core by default, each with one
 * WebRtcServer, so all WebRTC media of worker i uses the single port
 * basePort + i (UDP and TCP). New routers go to the worker carrying the
 * fewest. A worker that dies is replaced on the same port; `workerDied`
 * tells the owners of its routers, so calls can move to a new router.
 */
export class WorkerPool extends EventEmitter<{ workerDied: [{ index: number }]; workerReplaced: [{ index: number }] }> {
  private readonly slots: WorkerSlot[] = [];
  private closed = false;

  private constructor(private readonly options: WorkerPoolOptions) {
    super();
  }

  static async create(options: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    const count = options.workers > 0 ? options.workers : os.availableParallelism();
    try {
      for (let i = 0; i < count; i++) pool.slots.push(await pool.startWorker(i));
    } catch (err) {
      await pool.close();
      throw err;
    }
    options.logger.info({ workers: count, ports: pool.slots.map((s) => s.port), listenIp: options.listenIp, announcedAddress: options.announcedAddress, rtcPorts: options.rtcMinPort !== undefined || options.rtcMaxPort !== undefined ? `${options.rtcMinPort ?? 10000}-${options.rtcMaxPort ?? 59999}` : undefined }, 'media workers started');
    return pool;
  }

  private async startWorker(index: number): Promise<WorkerSlot> {
    const { logger } = this.options;
    const mediasoup = loadMediasoup(this.options.workerBin);
    const { rtcMinPort, rtcMaxPort } = this.options;
    const worker = await mediasoup.createWorker({
      logLevel: this.options.logLevel,
      ...(rtcMinPort !== undefined ? { rtcMinPort } : {}),
      ...(rtcMaxPort !== undefined ? { rtcMaxPort } : {}),
      appData: { index },
    });
    const port = this.options.basePort + index;
    const listen = (protocol: 'udp' | 'tcp') => ({ protocol, ip: this.options.listenIp, port, ...(this.options.announcedAddress ? { announcedIp: this.options.announcedAddress } : {}) });
    let webRtcServer: types.WebRtcServer;
    try {
      webRtcServer = await worker.createWebRtcServer({ listenInfos: [listen('udp'), listen('tcp')] });
    } catch (err) {
      worker.close();
      throw new Error(`media worker ${index} cannot listen on ${this.options.listenIp}:${port} (UDP and TCP): is the port in use?`, { cause: err });
    }
    const slot: WorkerSlot = { index, port, worker, webRtcServer, routers: new Set() };
    worker.on('died', (error) => {
      logger.error({ err: error, index, pid: worker.pid }, 'media worker died');
      void this.replace(slot);
    });
    logger.debug({ index, pid: worker.pid, port }, 'media worker ready');
    return slot;
  }

  private async replace(dead: WorkerSlot): Promise<void> {
    // mediasoup has already closed the dead worker's routers (their owners see router.closed).
    dead.routers.clear();
    const position = this.slots.indexOf(dead);
    if (this.closed || position === -1) return;
    // The port is free again once the dead worker is gone; retry briefly if the OS has not released it yet.
    for (let attempt = 0; attempt < 20 && !this.closed; attempt++) {
      try {
        this.slots[position] = await this.startWorker(dead.index);
        this.options.logger.info({ index: dead.index, pid: this.slots[position]!.worker.pid }, 'media worker replaced');
        this.emit('workerReplaced', { index: dead.index });
        break;
      } catch (err) {
        this.options.logger.warn({ err, index: dead.index, attempt }, 'could not replace the media worker yet');
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    this.emit('workerDied', { index: dead.index });
  }

  /** A new router (one per call) on the live worker with the fewest routers. */
  async createRouter(appData: Record<string, unknown> = {}): Promise<{ router: types.Router; webRtcServer: types.WebRtcServer }> {
    const live = this.slots.filter((s) => !s.worker.died && !s.worker.closed);
    if (live.length === 0) throw new Error('no media worker is running');
    const slot = live.reduce((a, b) => (b.routers.size < a.routers.size ? b : a));
    const router = await slot.worker.createRouter({ mediaCodecs, appData });
    slot.routers.add(router);
    router.observer.once('close', () => slot.routers.delete(router));
    return { router, webRtcServer: slot.webRtcServer };
  }

  /** For status pages, metrics and tests. */
  describe(): { index: number; pid: number; port: number; routers: number; alive: boolean }[] {
    return this.slots.map((s) => ({ index: s.index, pid: s.worker.pid, port: s.port, routers: s.routers.size, alive: !s.worker.died && !s.worker.closed }));
  }

  async resourceUsage(): Promise<{ index: number; pid: number; usage: types.WorkerResourceUsage }[]> {
    return Promise.all(this.slots.map(async (s) => ({ index: s.index, pid: s.worker.pid, usage: await s.worker.getResourceUsage() })));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const slot of this.slots) slot.worker.close();
    this.slots.length = 0;
  }
}
