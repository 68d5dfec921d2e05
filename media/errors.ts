export type MediaErrorCode =
  | 'not_found'
  | 'not_joined'
  | 'forbidden'
  | 'media_unavailable'
  | 'cannot_consume'
  /** Parameters from a participant (DTLS, RTP) that mediasoup cannot read: a client's mistake or an attack, not a failure of ours. */
  | 'invalid_parameters'
  /** A participant asked for more than it may hold at once (transports, producers per source, consumers per producer; see limits.ts). */
  | 'limit_reached'
  /** A participant creates transports faster than a browser ever needs to. */
  | 'rate_limited'
  /** Every recording port is taken (raise VCLERK_RECORDING_PORT_MAX or record fewer calls at once). */
  | 'no_ports'
  /** No recorded track holds anything composable. */
  | 'nothing_to_compose'
  /** ffmpeg could not be started, or failed (details in `cause` and the log). */
  | 'ffmpeg_failed';

/** A refused or failed media operation, with a stable code the signalling layer passes on. */
export class MediaError extends Error {
  constructor(readonly code: MediaErrorCode, options?: ErrorOptions) {
    super(code, options);
    this.name = 'MediaError';
  }
}
