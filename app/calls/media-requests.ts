import { MediaError, type Room } from '../../media';
import type { Logger } from '../core/logger';
import type { TurnIssuer } from './turn';
import { ANYONE, callRequests, type CallModule, type CallRequests } from './module';
import { CallRefusal } from './refusal';
import type { CallService } from './service';
import type { SocketIdentity } from './signalling-auth';

export interface MediaModuleDeps {
  calls: CallService;
  logger: Logger;
  turn?: TurnIssuer | null;
  /** The other modules' join hooks (recording's consent gate), run around every join. */
  beforeJoin(who: SocketIdentity): Promise<void>;
  afterJoin(who: SocketIdentity, room: Room): void;
  /** The participant leaves for good (the hub frees its media and closes the connection). */
  leave(who: SocketIdentity, room: Room): Promise<void>;
}

/** A refusal of the media layer (media/errors.ts) as the call's refusal, with the same code. */
async function refusing<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (err) {
    if (err instanceof MediaError) throw new CallRefusal(err.code, { cause: err });
    throw err;
  }
}

/**
 * The built-in module of the call's media (joining, transports, producers,
 * consumers, heartbeat, leaving): each validated payload is passed to the
 * participant's own objects in the call's Room. Anyone in the call may send
 * them, sharing a screen included (the clerk's and the customer's alike).
 */
export function mediaModule(deps: MediaModuleDeps): CallModule {
  const requests: CallRequests = callRequests({
    getRouterRtpCapabilities: { roles: ANYONE, handle: async ({ room }) => ({ rtpCapabilities: await refusing(room.capabilities()) }) },
    join: {
      roles: ANYONE,
      handle: async ({ who, peerId, room, payload, emit }) => {
        if (!room.hasPeer(peerId)) throw new CallRefusal('not_joined');
        await deps.beforeJoin(who);
        const producers = await refusing(room.join(peerId, payload.rtpCapabilities as never));
        emit('peerJoined', { peerId, role: who.participant.role, label: who.participant.label }, peerId);
        const bothPresent = room.hasRole('clerk') && room.hasRole('customer');
        await deps.calls.joined(who.callId, who.participant, bothPresent, who);
        deps.afterJoin(who, room);
        return {
          peerId,
          role: who.participant.role,
          producers,
          peers: room.peerList().filter((p) => p.peerId !== peerId),
          iceServers: deps.turn?.iceServers() ?? [],
        };
      },
    },
    getIceServers: { roles: ANYONE, handle: async () => ({ iceServers: deps.turn?.iceServers() ?? [] }) },
    createTransport: {
      roles: ANYONE,
      handle: async ({ peerId, room, payload }) => {
        const t = await refusing(room.createTransport(peerId, payload.direction));
        return { id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters };
      },
    },
    connectTransport: {
      roles: ANYONE,
      handle: async ({ peerId, room, payload }) => {
        await refusing(room.connectTransport(peerId, payload.transportId, payload.dtlsParameters as never));
        return {};
      },
    },
    restartIce: { roles: ANYONE, handle: async ({ peerId, room, payload }) => ({ iceParameters: await refusing(room.restartIce(peerId, payload.transportId)) }) },
    produce: {
      // What each role may publish, declared here (livekit's canPublishSources): every source, for both roles.
      roles: ANYONE,
      handle: async ({ peerId, room, payload }) => {
        const producer = await refusing(room.produce(peerId, payload.transportId, payload.kind, payload.rtpParameters as never, payload.source));
        return { producerId: producer.id };
      },
    },
    pauseProducer: {
      roles: ANYONE,
      handle: async ({ peerId, room, payload }) => {
        await refusing(room.pauseProducer(peerId, payload.producerId));
        return {};
      },
    },
    resumeProducer: {
      roles: ANYONE,
      handle: async ({ peerId, room, payload }) => {
        await refusing(room.resumeProducer(peerId, payload.producerId));
        return {};
      },
    },
    closeProducer: {
      roles: ANYONE,
      handle: async ({ peerId, room, payload }) => {
        await refusing(room.closeProducer(peerId, payload.producerId));
        return {};
      },
    },
    consume: {
      roles: ANYONE,
      handle: async ({ peerId, room, payload }) => {
        const consumer = await refusing(room.consume(peerId, payload.transportId, payload.producerId));
        return { consumerId: consumer.id, producerId: consumer.producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters };
      },
    },
    resumeConsumer: {
      roles: ANYONE,
      handle: async ({ peerId, room, payload }) => {
        await refusing(room.resumeConsumer(peerId, payload.consumerId));
        return {};
      },
    },
    heartbeat: { roles: ANYONE, handle: async () => ({ serverTime: Date.now() }) },
    leave: {
      roles: ANYONE,
      handle: async ({ who, room }) => {
        await deps.leave(who, room);
        return {};
      },
    },
  });
  return { name: 'media', requests };
}
