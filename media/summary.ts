/**
 * What the media layer tells about its participants and their producers:
 * plain types without imports, so the signalling protocol
 * (app/calls/protocol.ts) and the browser client use the same ones.
 */

export type PeerRole = 'clerk' | 'customer';
export type Source = 'microphone' | 'camera' | 'screen';

/** A producer as the other participant learns of it (`newProducer`, `join`). */
export interface ProducerSummary {
  producerId: string;
  peerId: string;
  role: PeerRole;
  kind: 'audio' | 'video';
  source: Source;
  paused: boolean;
}
