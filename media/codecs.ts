import type { types } from 'mediasoup';

/** What every call's router offers: Opus for audio, VP8 (and H264 for Safari) for video. */
export const mediaCodecs: types.RtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: { 'x-google-start-bitrate': 800 } },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
  },
];

/**
 * The router's capabilities as a plain RTP receiver (ffmpeg) needs them:
 * each codec without RTX and without the feedback that turns on
 * bandwidth probing (transport-cc, goog-remb), and no header extensions.
 * With the full capabilities the PlainTransport sends probe packets
 * (SSRC 1234, payload type 127) into the receiver's video port.
 */
export function plainRtpCapabilities(capabilities: types.RtpCapabilities): types.RtpCapabilities {
  return {
    codecs: (capabilities.codecs ?? [])
      .filter((c) => !/\/rtx$/i.test(c.mimeType))
      // No generic NACK either: a plain receiver (ffmpeg) never asks for retransmissions, and with
      // NACK mediasoup keeps a retransmission buffer per consumer (bench/load: 18 % of the worker's
      // CPU per stream and about 1 MB per stream). PLI stays (`nack` with parameter `pli`).
      .map((c) => ({ ...c, rtcpFeedback: (c.rtcpFeedback ?? []).filter((f) => f.type !== 'transport-cc' && f.type !== 'goog-remb' && !(f.type === 'nack' && !f.parameter)) })),
    headerExtensions: [],
  };
}
