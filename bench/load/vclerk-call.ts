/**
 * One simulated call's media wiring in VClerk's room, as a browser's call
 * page does it (join, a transport, camera and microphone produced, the
 * other side consumed), with the load generator's plain RTP instead of
 * WebRTC: each participant a peer whose streams are producers made by
 * `room.produce` on a plain ingest transport, and each forwarded stream
 * leaving through `room.createPlainConsumer` (what the recorder uses),
 * resumed with a key frame request. Used by the load bench's VClerk target
 * and by the worker-kill bench, which wires a call again after the room's
 * reset as a browser joins again.
 */
import type { types } from 'mediasoup';
import { plainRtpCapabilities, type Room } from '../../media';
import type { ParticipantReceivers, ParticipantSend } from './target';

const AUDIO_PT = 100;
const VIDEO_PT = 101;

/** The peer ids of call `index`'s two participants. */
export function peerIds(index: number): [string, string] {
  return [`clerk-${index}`, `customer-${index}`];
}

/**
 * Both participants join (again), each with a new ingest transport and its
 * camera and microphone produced on it (`joined(p)` runs between the join
 * and the transport); then each receives the other's streams. Returns how
 * the generator must send, and the consumers. The peers must have been added.
 */
export async function connectCall(
  room: Room,
  index: number,
  receivers: [ParticipantReceivers, ParticipantReceivers],
  joined?: (participant: number) => Promise<void>,
): Promise<{ sends: [ParticipantSend, ParticipantSend]; consumers: types.Consumer[] }> {
  const capabilities = plainRtpCapabilities(await room.capabilities());
  const sends: ParticipantSend[] = [];
  const producers: { audio: string; video: string }[] = [];
  const consumers: types.Consumer[] = [];
  for (let p = 0; p < 2; p++) {
    const peerId = peerIds(index)[p]!;
    await room.join(peerId, capabilities);
    await joined?.(p);
    // One transport for both streams, as a browser bundles them: the generator sends both from one socket.
    const ingest = await room.createIngestTransport(peerId);
    const audioSsrc = 0x20000000 + index * 4 + p * 2;
    const videoSsrc = audioSsrc + 1;
    const audio = await room.produce(peerId, ingest.id, 'audio', { codecs: [{ mimeType: 'audio/opus', payloadType: AUDIO_PT, clockRate: 48000, channels: 2, rtcpFeedback: [] }], encodings: [{ ssrc: audioSsrc }] }, 'microphone');
    const video = await room.produce(peerId, ingest.id, 'video', { codecs: [{ mimeType: 'video/VP8', payloadType: VIDEO_PT, clockRate: 90000, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] }], encodings: [{ ssrc: videoSsrc }] }, 'camera');
    producers.push({ audio: audio.id, video: video.id });
    const port = ingest.tuple.localPort;
    const rtcpPort = ingest.rtcpTuple!.localPort;
    sends.push({ streams: [{ kind: 'audio', ssrc: audioSsrc, payloadType: AUDIO_PT, port, rtcpPort }, { kind: 'video', ssrc: videoSsrc, payloadType: VIDEO_PT, port, rtcpPort }] });
  }
  // Participant p receives the other's streams.
  for (let p = 0; p < 2; p++) {
    const other = producers[1 - p]!;
    for (const kind of ['audio', 'video'] as const) {
      const endpoint = receivers[p]![kind];
      const { consumer } = await room.createPlainConsumer(other[kind], { ip: '127.0.0.1', port: endpoint.port, rtcpPort: endpoint.rtcpPort });
      await consumer.resume();
      if (kind === 'video') await consumer.requestKeyFrame();
      consumers.push(consumer);
    }
  }
  return { sends: [sends[0]!, sends[1]!], consumers };
}
