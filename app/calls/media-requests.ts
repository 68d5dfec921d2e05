import { MediaError, type Room } from '../../media';
import type { CurationRequest } from '../curation/live';
import type { Logger } from '../logger';
import type { TurnIssuer } from '../ops/turn';
import type { RecordingLive, RecordingRequest } from '../recordings/live';
import type { RequestType, ResponseData, ServerEvents } from './protocol';
import type { CallService } from './service';
import type { SocketIdentity } from './signalling-auth';

export type MediaRequest = Exclude<RequestType, CurationRequest | RecordingRequest>;

export type MediaHandlers = { [T in MediaRequest]: (who: SocketIdentity, peerId: string, room: Room, payload: never) => Promise<ResponseData[T] | Record<string, never>> };

export interface MediaRequestDeps {
  calls: CallService;
  logger: Logger;
  recordings?: RecordingLive;
  turn?: TurnIssuer | null;
  emitToCall<E extends keyof ServerEvents>(callId: string, event: E, data: ServerEvents[E], exceptPeerId?: string): void;
  /** The participant leaves for good (the hub frees its media and closes the connection). */
  leave(who: SocketIdentity, room: Room): Promise<void>;
}

/**
 * The signalling requests about the call's media (joining, transports,
 * producers, consumers, heartbeat, leaving): each validated payload is
 * passed to the participant's own objects in the call's Room.
 */
export function mediaHandlers(deps: MediaRequestDeps): MediaHandlers {
  return {
    getRouterRtpCapabilities: async (_who, _peerId, room) => ({ rtpCapabilities: await room.capabilities() }),
    join: async (who, peerId, room, payload: { rtpCapabilities: Record<string, unknown> }) => {
      if (!room.hasPeer(peerId)) throw new MediaError('not_joined');
      await deps.recordings?.beforeJoin(who);
      const producers = await room.join(peerId, payload.rtpCapabilities as never);
      deps.emitToCall(who.callId, 'peerJoined', { peerId, role: who.participant.role, label: who.participant.label }, peerId);
      const bothPresent = room.hasRole('clerk') && room.hasRole('customer');
      await deps.calls.joined(who.callId, who.participant, bothPresent, who);
      deps.recordings?.afterJoin(who, room).catch((err) => deps.logger.error({ err, callId: who.callId }, 'recording after a join failed'));
      return {
        peerId,
        role: who.participant.role,
        producers,
        peers: room.peerList().filter((p) => p.peerId !== peerId),
        iceServers: deps.turn?.iceServers() ?? [],
      };
    },
    getIceServers: async () => ({ iceServers: deps.turn?.iceServers() ?? [] }),
    createTransport: async (_who, peerId, room, payload: { direction: 'send' | 'recv' }) => {
      const t = await room.createTransport(peerId, payload.direction);
      return { id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters };
    },
    connectTransport: async (_who, peerId, room, payload: { transportId: string; dtlsParameters: Record<string, unknown> }) => {
      await room.connectTransport(peerId, payload.transportId, payload.dtlsParameters as never);
      return {};
    },
    restartIce: async (_who, peerId, room, payload: { transportId: string }) => ({ iceParameters: await room.restartIce(peerId, payload.transportId) }),
    produce: async (_who, peerId, room, payload: { transportId: string; kind: 'audio' | 'video'; rtpParameters: Record<string, unknown>; source: 'microphone' | 'camera' | 'screen' }) => {
      const producer = await room.produce(peerId, payload.transportId, payload.kind, payload.rtpParameters as never, payload.source);
      return { producerId: producer.id };
    },
    pauseProducer: async (_who, peerId, room, payload: { producerId: string }) => {
      await room.pauseProducer(peerId, payload.producerId);
      return {};
    },
    resumeProducer: async (_who, peerId, room, payload: { producerId: string }) => {
      await room.resumeProducer(peerId, payload.producerId);
      return {};
    },
    closeProducer: async (_who, peerId, room, payload: { producerId: string }) => {
      await room.closeProducer(peerId, payload.producerId);
      return {};
    },
    consume: async (_who, peerId, room, payload: { transportId: string; producerId: string }) => {
      const consumer = await room.consume(peerId, payload.transportId, payload.producerId);
      return { consumerId: consumer.id, producerId: consumer.producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters };
    },
    resumeConsumer: async (_who, peerId, room, payload: { consumerId: string }) => {
      await room.resumeConsumer(peerId, payload.consumerId);
      return {};
    },
    heartbeat: async () => ({ serverTime: Date.now() }),
    leave: async (who, _peerId, room) => {
      await deps.leave(who, room);
      return {};
    },
  };
}
