import type { types } from 'mediasoup';

/** One stream ffmpeg receives: the consumer's RTP parameters and the local port pair it arrives on. */
export interface SdpStream {
  kind: types.MediaKind;
  /** RTP port (even); RTCP arrives on `port + 1`. */
  port: number;
  rtpParameters: types.RtpParameters;
}

/** The codecs the recorder can write without re-encoding. */
const SUPPORTED = new Set(['audio/opus', 'video/vp8', 'video/h264']);

/** The media codec of a consumer (its first non-RTX codec). */
export function mediaCodec(rtpParameters: types.RtpParameters): types.RtpCodecParameters {
  const codec = rtpParameters.codecs.find((c) => !/\/rtx$/i.test(c.mimeType));
  if (!codec) throw new Error('the consumer has no media codec');
  return codec;
}

export function canRecord(rtpParameters: types.RtpParameters): boolean {
  const codec = rtpParameters.codecs.find((c) => !/\/rtx$/i.test(c.mimeType));
  return codec !== undefined && SUPPORTED.has(codec.mimeType.toLowerCase());
}

/**
 * The SDP that tells ffmpeg what arrives where: one m= line per stream,
 * plain RTP/AVP (not AVPF) on 127.0.0.1, RTCP on the next port, the
 * consumer's payload type, codec and format parameters.
 */
export function buildSdp(streams: SdpStream[], sessionName = 'VClerk recording'): string {
  if (streams.length === 0) throw new Error('an SDP needs at least one stream');
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', `s=${sessionName.replace(/[\r\n]/g, ' ')}`, 'c=IN IP4 127.0.0.1', 't=0 0'];
  for (const stream of streams) {
    const codec = mediaCodec(stream.rtpParameters);
    if (!SUPPORTED.has(codec.mimeType.toLowerCase())) throw new Error(`cannot record ${codec.mimeType}`);
    const name = codec.mimeType.split('/')[1]!;
    const pt = codec.payloadType;
    const rtpmap = codec.channels && codec.channels > 1 ? `${name}/${codec.clockRate}/${codec.channels}` : `${name}/${codec.clockRate}`;
    lines.push(`m=${stream.kind} ${stream.port} RTP/AVP ${pt}`, `a=rtcp:${stream.port + 1}`, `a=rtpmap:${pt} ${rtpmap}`);
    const fmtp = formatParameters(codec.parameters);
    if (fmtp) lines.push(`a=fmtp:${pt} ${fmtp}`);
    lines.push('a=recvonly');
  }
  return lines.join('\r\n') + '\r\n';
}

function formatParameters(parameters: Record<string, unknown> | undefined): string {
  return Object.entries(parameters ?? {})
    .filter(([, value]) => value !== undefined && value !== null && value !== '')
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(';');
}
