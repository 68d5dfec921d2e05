/**
 * The contract between the load generator (`bench/load/`) and the SFU it
 * loads: VClerk's own rooms (`vclerk-target.ts`) or Janus's videoroom
 * (`janus-target.ts`). The generator owns every UDP socket on its side
 * (senders and receivers, all on 127.0.0.1); a target owns the SFU and
 * wires each call so that each participant's streams reach the other
 * participant's receivers through the SFU.
 *
 * All traffic is on loopback. A target starts and stops its own processes.
 */

export type StreamKind = 'audio' | 'video';

/** Where the generator listens for one forwarded stream (127.0.0.1). */
export interface ReceiveEndpoint {
  kind: StreamKind;
  port: number;
  /** RTCP from the SFU (sender reports) arrives here; the generator sends its receiver reports and NACK/PLI from this port. */
  rtcpPort: number;
}

/** How the generator must send one stream of one participant into the SFU. */
export interface SendStream {
  kind: StreamKind;
  ssrc: number;
  payloadType: number;
  /** Destination on 127.0.0.1. Streams of one participant that share a port must be sent from the same local socket (comedia). */
  port: number;
  /** Where the generator's sender reports go; undefined when the SFU takes RTCP on `port` (rtcp-mux). */
  rtcpPort?: number;
}

export interface ParticipantReceivers {
  audio: ReceiveEndpoint;
  video: ReceiveEndpoint;
}

export interface ParticipantSend {
  streams: SendStream[];
}

export interface TargetOptions {
  /** Media worker processes (VClerk) or the equivalent (Janus: one process, this many event-loop threads where configurable). */
  workers: number;
  /** Record every call (VClerk only; a target that cannot record throws). */
  record?: boolean;
}

export interface LoadTarget {
  readonly name: string;
  start(options: TargetOptions): Promise<void>;
  /**
   * Sets up call `index` with two participants. `receivers[i]` is where
   * participant i's generator listens; the target makes the SFU forward the
   * other participant's audio and video there. Returns, per participant, how
   * to send its streams in. Resolves once the SFU would accept and forward.
   */
  addCall(index: number, receivers: [ParticipantReceivers, ParticipantReceivers]): Promise<[ParticipantSend, ParticipantSend]>;
  /** The processes doing the media work, whose CPU and memory the ramp measures. */
  mediaPids(): number[];
  /** Other processes whose CPU counts against the target (the recorder's ffmpegs), measured apart. */
  auxiliaryPids?(): number[];
  stop(): Promise<void>;
}
