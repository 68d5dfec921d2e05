/**
 * VClerk as the load target, through the appliance's own code paths: the
 * media workers started by `startMedia` from the appliance's configuration
 * (worker log level, ports), calls started through `CallService` in a
 * throwaway database (embedded PostgreSQL, or DATABASE_URL's server), one
 * `Room` per call from the `RoomRegistry`, each participant a peer whose
 * camera and microphone are producers made by `room.produce` on a plain
 * ingest transport (as test/support/rtp-source.ts does; a browser's come
 * over WebRTC), and each forwarded stream leaving through
 * `room.createPlainConsumer` (what the recorder uses), resumed with a key
 * frame request. With `record`, the appliance's `CallRecorder` records each
 * call (one ffmpeg per participant, whose CPU is measured apart).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { types } from 'mediasoup';
import { startMedia } from '../../app/calls/media-setup';
import { CallService } from '../../app/calls/service';
import { CallRecorder, PortAllocator, resolveFfmpeg, type RoomRegistry, type WorkerPool } from '../../media';
import { seedOrganisation, seedUser } from '../../test/support/accounts';
import { silentLogger, testConfig } from '../../test/support/context';
import { createTestDatabase, startTestServer, stopTestServer, type TestDatabase } from '../../test/support/database';
import { freePortBlock } from '../../test/support/process';
import type { LoadTarget, ParticipantReceivers, ParticipantSend, TargetOptions } from './target';
import { connectCall, peerIds } from './vclerk-call';

export function createTarget(): LoadTarget {
  let db: TestDatabase | undefined;
  let media: { pool: WorkerPool; rooms: RoomRegistry } | undefined;
  let dataDir: string | undefined;
  let calls: CallService;
  let caller: Parameters<CallService['start']>[0];
  let clerkParticipant: { role: 'clerk'; userId: string; label: string; organisationId: string };
  let linkHours = 24;
  let recording: { ffmpegPath: string; ports: PortAllocator } | undefined;
  const recorders: CallRecorder[] = [];
  const consumers: types.Consumer[] = [];

  return {
    name: 'vclerk',

    async start(options: TargetOptions): Promise<void> {
      await startTestServer();
      db = await createTestDatabase();
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-load-'));
      // The appliance's configuration, with its defaults (worker log level and all), on loopback; only the port
      // ranges are widened: each call holds 6 plain transports (12 ports), more than the default 1,000 allow for.
      const config = testConfig({
        VCLERK_DATA_DIR: dataDir,
        VCLERK_MEDIA_WORKERS: String(options.workers),
        VCLERK_MEDIA_LISTEN_IP: '127.0.0.1',
        VCLERK_MEDIA_PORT: String(await freePortBlock(options.workers)),
        VCLERK_MEDIA_RTC_PORT_MIN: '20000',
        VCLERK_MEDIA_RTC_PORT_MAX: '29999',
        VCLERK_RECORDING_PORT_MIN: '30000',
        VCLERK_RECORDING_PORT_MAX: '32759',
        VCLERK_RECORDING_MIN_FREE_MB: '1',
      });
      media = await startMedia(config, silentLogger);
      linkHours = config.callLinkHours;
      if (options.record) recording = { ffmpegPath: resolveFfmpeg(config.ffmpegPath), ports: new PortAllocator(config.recordingPortMin, config.recordingPortMax) };
      const org = await seedOrganisation(db.knex, 'Load Bench');
      const clerk = await seedUser(db.knex, org, 'clerk');
      calls = new CallService(db.knex);
      caller = { user: { id: clerk.id, organisationId: org.id, name: 'Load clerk' } as never, ip: '127.0.0.1', userAgent: 'load bench', sessionId: 'load' };
      clerkParticipant = { role: 'clerk', userId: clerk.id, label: 'Load clerk', organisationId: org.id };
    },

    async addCall(index: number, receivers: [ParticipantReceivers, ParticipantReceivers]): Promise<[ParticipantSend, ParticipantSend]> {
      if (!media || !db) throw new Error('vclerk target not started');
      const { call } = await calls.start(caller, linkHours, { reference: `load-${index}` });
      const room = await media.rooms.get(call.id);
      const [clerkId, customerId] = peerIds(index);
      room.addPeer(clerkId, 'clerk', 'Load clerk');
      room.addPeer(customerId, 'customer', `Customer ${index}`);
      const wired = await connectCall(room, index, receivers, (p) =>
        calls.joined(call.id, p === 0 ? clerkParticipant : { role: 'customer', label: `Customer ${index}` }, p === 1, { ip: '127.0.0.1', userAgent: 'load bench' }).then(() => undefined),
      );
      consumers.push(...wired.consumers);
      if (recording) {
        recorders.push(await CallRecorder.start(room, { dir: path.join(dataDir!, 'recordings', call.id), ffmpegPath: recording.ffmpegPath, ports: recording.ports, logger: silentLogger }));
      }
      return wired.sends;
    },

    mediaPids(): number[] {
      return media ? media.pool.describe().map((w) => w.pid) : [];
    },

    auxiliaryPids(): number[] {
      return recorders.flatMap((r) => r.processIds());
    },

    async stop(): Promise<void> {
      await Promise.allSettled(recorders.map((r) => r.stop()));
      if (media) {
        await media.rooms.closeAll();
        await media.pool.close();
      }
      await db?.drop();
      await stopTestServer();
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
