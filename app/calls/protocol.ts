import { z } from 'zod';

/**
 * The signalling protocol between the browser call client and the
 * appliance, over socket.io at path `/signal`.
 *
 * Connecting: `io({ path: '/signal', auth: { callId } })` for a signed-in
 * clerk (the session cookie identifies them), or `auth: { token }` for a
 * customer holding the call link's token. A refused connection gets a
 * `connect_error` whose `message` is a stable code: `unauthenticated`,
 * `token_invalid`, `call_not_found`, `call_ended`.
 *
 * Requests: `socket.emit(type, payload, ack)`. Every ack is either
 * `{ ok: true, data }` or `{ ok: false, error: { code, message } }` with a
 * stable code: `invalid_message`, `too_large`, `rate_limited`, `not_joined`,
 * `not_found`, `forbidden`, `call_ended`, `media_unavailable`,
 * `internal_error`.
 *
 * Events from the server: see ServerEvents.
 */

const id = z.string().min(1).max(100);
const json = z.record(z.string(), z.unknown());

export const requests = {
  /** The router's RTP capabilities, to load the mediasoup-client Device. */
  getRouterRtpCapabilities: z.object({}).strict(),
  /** Joins the call's media room with the device's capabilities; answers the producers already there. */
  join: z.object({ rtpCapabilities: json }).strict(),
  createTransport: z.object({ direction: z.enum(['send', 'recv']) }).strict(),
  connectTransport: z.object({ transportId: id, dtlsParameters: json }).strict(),
  restartIce: z.object({ transportId: id }).strict(),
  produce: z.object({
    transportId: id,
    kind: z.enum(['audio', 'video']),
    rtpParameters: json,
    source: z.enum(['microphone', 'camera', 'screen']),
  }).strict(),
  pauseProducer: z.object({ producerId: id }).strict(),
  resumeProducer: z.object({ producerId: id }).strict(),
  closeProducer: z.object({ producerId: id }).strict(),
  consume: z.object({ transportId: id, producerId: id }).strict(),
  resumeConsumer: z.object({ consumerId: id }).strict(),
  heartbeat: z.object({}).strict(),
  leave: z.object({}).strict(),
} as const;

export type RequestType = keyof typeof requests;
export type RequestPayload<T extends RequestType> = z.infer<(typeof requests)[T]>;

export interface TransportInfo {
  id: string;
  iceParameters: unknown;
  iceCandidates: unknown[];
  dtlsParameters: unknown;
}

export interface ProducerInfo {
  producerId: string;
  peerId: string;
  role: 'clerk' | 'customer';
  kind: 'audio' | 'video';
  source: 'microphone' | 'camera' | 'screen';
  paused: boolean;
}

export interface ResponseData {
  getRouterRtpCapabilities: { rtpCapabilities: unknown };
  join: { peerId: string; role: 'clerk' | 'customer'; producers: ProducerInfo[]; peers: { peerId: string; role: 'clerk' | 'customer'; label: string }[] };
  createTransport: TransportInfo;
  connectTransport: Record<string, never>;
  restartIce: { iceParameters: unknown };
  produce: { producerId: string };
  pauseProducer: Record<string, never>;
  resumeProducer: Record<string, never>;
  closeProducer: Record<string, never>;
  consume: { consumerId: string; producerId: string; kind: 'audio' | 'video'; rtpParameters: unknown };
  resumeConsumer: Record<string, never>;
  heartbeat: { serverTime: number };
  leave: Record<string, never>;
}

export type Ack<T extends RequestType> =
  | { ok: true; data: ResponseData[T] }
  | { ok: false; error: { code: string; message: string } };

/** Events the server sends. */
export interface ServerEvents {
  /** Another participant started sending (camera, microphone, screen). Consume it. */
  newProducer: ProducerInfo;
  producerClosed: { producerId: string };
  producerPaused: { producerId: string };
  producerResumed: { producerId: string };
  peerJoined: { peerId: string; role: 'clerk' | 'customer'; label: string };
  peerLeft: { peerId: string };
  /**
   * The media server under this call failed and was replaced. Close the
   * device's transports and join again (getRouterRtpCapabilities, join, ...).
   */
  mediaReset: { reason: 'worker_died' };
  /** The call is over; the socket is closed after this. */
  callEnded: { reason: string };
}

/** Size limit of one request payload (JSON), in bytes. */
export const MAX_PAYLOAD_BYTES = 32 * 1024;
/** Client heartbeat interval; the server closes a peer silent for 3 intervals. */
export const HEARTBEAT_INTERVAL_MS = 5000;
