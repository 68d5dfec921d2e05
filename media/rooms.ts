import type { MediaLogger } from './log';
import { Room } from './room';
import type { WorkerPool } from './worker-pool';

/**
 * One media room per active call, created on first use on the least-loaded
 * worker. When a worker dies, the rooms it carried get a new router and
 * tell their peers (`reset`), who then join again.
 */
export class RoomRegistry {
  private readonly rooms = new Map<string, Promise<Room>>();

  constructor(private readonly pool: WorkerPool, private readonly logger: MediaLogger) {
    pool.on('workerDied', () => {
      for (const pending of this.rooms.values()) {
        // A room whose creation failed is being forgotten: nothing to move (and no rejection left unhandled).
        pending.then(
          (room) => {
            if (room.routerClosed) {
              room.reset().catch((err) => this.logger.error({ err, callId: room.callId }, 'could not move the call to a new router'));
            }
          },
          () => undefined,
        );
      }
    });
  }

  get(callId: string): Promise<Room> {
    let room = this.rooms.get(callId);
    if (!room) {
      room = Room.create(callId, this.pool, this.logger);
      this.rooms.set(callId, room);
      room.then((r) => r.once('closed', () => this.rooms.delete(callId)), () => this.rooms.delete(callId));
    }
    return room;
  }

  async find(callId: string): Promise<Room | undefined> {
    return this.rooms.get(callId);
  }

  async close(callId: string): Promise<void> {
    const room = await this.rooms.get(callId);
    room?.close();
  }

  async closeAll(): Promise<void> {
    const rooms = await Promise.allSettled([...this.rooms.values()]);
    for (const r of rooms) if (r.status === 'fulfilled') r.value.close();
    this.rooms.clear();
  }

  get size(): number {
    return this.rooms.size;
  }
}
