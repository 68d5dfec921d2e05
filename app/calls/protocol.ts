import { z } from 'zod';
import type { ProducerSummary } from '../../media/summary';
import { MAX_CARDS, MESSAGE_MAX, NOTE_MAX, PRIVATE_NOTES_MAX } from './shared';

export { HEARTBEAT_INTERVAL_MS, MAX_CARDS, MAX_MESSAGES, MAX_PAYLOAD_BYTES, MESSAGE_MAX, NOTE_MAX, PRIVATE_NOTES_MAX } from './shared';

/**
 * The signalling protocol between the browser call client and the
 * appliance, over socket.io at path `/signal`.
 *
 * Connecting: `io({ path: '/signal', auth: { callId } })` for a signed-in
 * clerk (the session cookie identifies them), or `auth: { token }` for a
 * customer holding the call link's token. A refused connection gets a
 * `connect_error` whose `message` is a stable code: `unauthenticated`,
 * `token_invalid`, `call_not_found`, `call_ended` (or `database_unavailable`
 * while the database is out of reach: try again).
 *
 * Requests: `socket.emit(type, payload, ack)`. Every ack is either
 * `{ ok: true, data }` or `{ ok: false, error: { code, message } }` with a
 * stable code: `invalid_message`, `invalid_parameters` (DTLS or RTP
 * parameters mediasoup cannot read), `too_large`, `rate_limited`, `not_joined`,
 * `not_found`, `forbidden`, `call_ended`, `media_unavailable`,
 * `limit_reached` (too many transports, producers or consumers for one
 * participant), `consent_required`, `disk_full`, `recording_unavailable`,
 * `database_unavailable` (the database is out of reach for now: try again),
 * `internal_error`. A request name that is not a string is refused with
 * `invalid_message` like an unknown one.
 *
 * A customer whose link is revoked gets `callEnded` with reason
 * `link_revoked` and is disconnected. A browser connection whose `Origin`
 * is not the appliance's own is refused with `forbidden`.
 *
 * Events from the server: see ServerEvents.
 */

const id = z.string().min(1).max(100);

const json = z.record(z.string(), z.unknown());

export const requests = {
  /** The router's RTP capabilities, to load the mediasoup-client Device. */
  getRouterRtpCapabilities: z.object({}).strict(),
  /** Joins the call's media room with the device's capabilities; answers the producers already there (and the TURN servers, if any). */
  join: z.object({ rtpCapabilities: json }).strict(),
  /** Fresh TURN credentials (e.g. before an ICE restart, when the ones from `join` may have expired); an empty list without TURN. */
  getIceServers: z.object({}).strict(),
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

  // Each group of requests is served by a call module (app/calls/module.ts;
  // the list in app/call-modules.ts), which declares the roles that may send them.
  // Curation, chat and notes (app/curation, app/chat, app/notes). `curation.show`, `.note`,
  // `.reorder`, `.withdraw` and `notes.save` are the clerk's;
  // `curation.favourite` and `.ask` the customer's; a request of the other
  // role is refused with `forbidden`. Text is stored and relayed as typed:
  // clients must show it as text, never as HTML.
  /** The call's cards and chat so far (and, for the clerk, their private notes): after joining and after every reconnect. */
  'curation.sync': z.object({}).strict(),
  /** Shows a product of the organisation's catalog to the customer (again, if withdrawn earlier). */
  'curation.show': z.object({ productId: z.uuid(), note: z.string().max(NOTE_MAX).optional() }).strict(),
  'curation.note': z.object({ itemId: z.uuid(), note: z.string().max(NOTE_MAX) }).strict(),
  /** The shown cards in their new order: exactly the ids of the cards shown now. */
  'curation.reorder': z.object({ itemIds: z.array(z.uuid()).max(MAX_CARDS) }).strict(),
  'curation.withdraw': z.object({ itemId: z.uuid() }).strict(),
  'curation.favourite': z.object({ itemId: z.uuid(), favourite: z.boolean() }).strict(),
  /** The customer asks about a card, optionally with a text; the clerk sees it in the chat and on the card. */
  'curation.ask': z.object({ itemId: z.uuid(), text: z.string().max(MESSAGE_MAX).optional() }).strict(),
  'chat.send': z.object({ text: z.string().min(1).max(MESSAGE_MAX) }).strict(),
  /** The clerk's private notes on the call (the whole text; never shown to the customer). */
  'notes.save': z.object({ text: z.string().max(PRIVATE_NOTES_MAX) }).strict(),

  // Recording (app/recordings/module.ts). `recording.start` and `.stop` are the
  // clerk's (policy "on demand"); `recording.consent` is the customer's
  // answer to the notice shown (its version as rendered on the page).
  // Refusals: `forbidden` (policy or role), `consent_required`, `disk_full`,
  // `recording_unavailable`.
  'recording.status': z.object({}).strict(),
  'recording.start': z.object({}).strict(),
  'recording.stop': z.object({}).strict(),
  'recording.consent': z.object({ answer: z.enum(['granted', 'declined', 'withdrawn']), noticeVersion: z.string().min(1).max(100), language: z.enum(['en', 'de']) }).strict(),
} as const;

export type RequestType = keyof typeof requests;

export type RequestPayload<T extends RequestType> = z.infer<(typeof requests)[T]>;

export interface TransportInfo {
  id: string;
  iceParameters: unknown;
  iceCandidates: unknown[];
  dtlsParameters: unknown;
}

/** A producer of the other participant (media/summary.ts: the media layer's own type). */
export type ProducerInfo = ProducerSummary;

/** A product shown to the customer, as both sides see it. */
export interface Card {
  id: string;
  productId: string | null;
  sku: string;
  name: string;
  priceCents: number;
  currency: string;
  /** The product's page on the organisation's own site (http or https), or null. */
  url: string | null;
  /** The product image shown (clerk: /catalog/images/<id>; customer: /join/<token>/images/<id>), or null. */
  imageId: string | null;
  /** The clerk's note for the customer. */
  note: string;
  position: number;
  favourite: boolean;
  /** The customer has asked about it. */
  asked: boolean;
}

export interface ChatMessage {
  id: string;
  from: 'clerk' | 'customer';
  kind: 'text' | 'question';
  /** The card a question is about, and its name at the time. */
  itemId: string | null;
  itemName: string | null;
  body: string;
  /** ISO 8601 */
  at: string;
}

/**
 * Where recording stands in a call, sent to both participants
 * (`recording.state`) whenever it changes. `requested`: the clerk asked,
 * the customer's consent is awaited. `reason` says why it last stopped or
 * did not start: `declined`, `withdrawn`, `stopped`, `failed` (the
 * recorder died; what was recorded is kept), `disk_full`, `call_ended`.
 */
export interface RecordingState {
  mode: 'off' | 'on_demand' | 'always';
  status: 'idle' | 'requested' | 'recording';
  recordingId: string | null;
  startedAt: string | null;
  reason: string | null;
  /** Under "always": a customer who declined may still join, unrecorded. */
  allowUnrecorded: boolean;
}

/**
 * A TURN server with time-limited credentials (TURN REST API scheme: the
 * username starts with the expiry as unix time), for the `iceServers`
 * option of mediasoup-client's createSendTransport/createRecvTransport.
 */
export interface IceServer {
  urls: string[];
  username: string;
  credential: string;
}

export interface ResponseData {
  getRouterRtpCapabilities: { rtpCapabilities: unknown };
  join: { peerId: string; role: 'clerk' | 'customer'; producers: ProducerInfo[]; peers: { peerId: string; role: 'clerk' | 'customer'; label: string }[]; iceServers: IceServer[] };
  getIceServers: { iceServers: IceServer[] };
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
  'curation.sync': { cards: Card[]; messages: ChatMessage[]; notes?: string };
  'curation.show': { card: Card };
  'curation.note': Record<string, never>;
  'curation.reorder': Record<string, never>;
  'curation.withdraw': Record<string, never>;
  'curation.favourite': Record<string, never>;
  'curation.ask': { message: ChatMessage };
  'chat.send': { message: ChatMessage };
  'notes.save': Record<string, never>;
  'recording.status': RecordingState;
  'recording.start': RecordingState;
  'recording.stop': RecordingState;
  'recording.consent': RecordingState;
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
  /** The participant left: by a leave request, by closing their own connection (the page went), or their grace period ran out. */
  peerLeft: { peerId: string };
  /** The participant's connection dropped without leaving (a crashed tab, a lost network): peerJoined if they come back, else peerLeft. */
  peerAway: { peerId: string };
  /**
   * The media server under this call failed and was replaced. Close the
   * device's transports and join again (getRouterRtpCapabilities, join, ...).
   */
  mediaReset: { reason: 'worker_died' };
  /** The call is over; the socket is closed after this. */
  callEnded: { reason: string };
  /** The shown cards changed (shown, withdrawn, annotated, reordered, favourite, asked): the whole list, in order. */
  'curation.cards': { cards: Card[] };
  /** A new chat message or question, to both participants (the sender too). */
  'chat.message': ChatMessage;
  'recording.state': RecordingState;
}
