/**
 * Camera and microphone: finding them, opening them, and telling why not.
 * Nothing here touches the DOM or the call.
 */

export type DeviceKind = 'audio' | 'video';
export type MediaProblemCode = 'permission_denied' | 'no_device' | 'device_in_use';
/** What is missing because of a problem. */
export type Missing = 'camera' | 'microphone' | 'both';

export interface MediaProblem {
  code: MediaProblemCode;
  missing: Missing;
}

export interface LocalTracks {
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  problem: MediaProblem | null;
}

export interface DeviceLists {
  cameras: MediaDeviceInfo[];
  microphones: MediaDeviceInfo[];
  /** Audio outputs: listed only where the page can choose one (setSinkId). */
  speakers: MediaDeviceInfo[];
}

/** Whether the browser lets a page choose the speaker (HTMLMediaElement.setSinkId; Chromium, Firefox 116+). */
export function canChooseSpeaker(): boolean {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

const AUDIO: MediaTrackConstraints = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
const VIDEO: MediaTrackConstraints = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30, max: 30 } };

function constraintsFor(kind: DeviceKind, deviceId?: string): MediaTrackConstraints {
  const base = kind === 'audio' ? AUDIO : VIDEO;
  return deviceId ? { ...base, deviceId: { exact: deviceId } } : { ...base };
}

function mediaDevices(): MediaDevices | undefined {
  // Undefined outside a secure context (plain http on a non-local address).
  return typeof navigator !== 'undefined' ? navigator.mediaDevices : undefined;
}

/** The problem behind a getUserMedia failure, by the DOMException's name. */
export function problemCode(error: unknown): MediaProblemCode {
  const name = error instanceof Error || error instanceof DOMException ? error.name : '';
  switch (name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'permission_denied';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
    case 'ConstraintNotSatisfiedError':
    case 'TypeError':
      return 'no_device';
    default:
      // NotReadableError, TrackStartError, AbortError: the device exists but could not be started.
      return 'device_in_use';
  }
}

function missingOf(audio: MediaStreamTrack | null, video: MediaStreamTrack | null): Missing | null {
  if (!audio && !video) return 'both';
  if (!video) return 'camera';
  if (!audio) return 'microphone';
  return null;
}

/** The cameras and microphones the browser reports (labels are empty until permission is granted). */
export async function listDevices(): Promise<DeviceLists> {
  const md = mediaDevices();
  if (!md?.enumerateDevices) return { cameras: [], microphones: [], speakers: [] };
  try {
    const all = await md.enumerateDevices();
    return {
      cameras: all.filter((d) => d.kind === 'videoinput'),
      microphones: all.filter((d) => d.kind === 'audioinput'),
      speakers: canChooseSpeaker() ? all.filter((d) => d.kind === 'audiooutput') : [],
    };
  } catch {
    return { cameras: [], microphones: [], speakers: [] };
  }
}

/** Opens one device (the default one without `deviceId`); throws the browser's error. */
export async function openTrack(kind: DeviceKind, deviceId?: string): Promise<MediaStreamTrack> {
  const md = mediaDevices();
  if (!md?.getUserMedia) throw new DOMException('no media devices', 'NotFoundError');
  const stream = await md.getUserMedia(kind === 'audio' ? { audio: constraintsFor('audio', deviceId) } : { video: constraintsFor('video', deviceId) });
  const track = kind === 'audio' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
  if (!track) throw new DOMException('no track', 'NotFoundError');
  return track;
}

async function permissionGranted(name: 'camera' | 'microphone'): Promise<boolean> {
  try {
    const status = await navigator.permissions.query({ name: name as PermissionName });
    return status.state === 'granted';
  } catch {
    return false; // Not every browser can be asked about camera and microphone.
  }
}

/**
 * Opens the microphone and camera, keeping whatever works: with no camera
 * the microphone still opens, and the other way round. The problem names
 * the first reason something is missing. Never throws.
 */
export async function openLocalTracks(choice: { audioDeviceId?: string; videoDeviceId?: string } = {}): Promise<LocalTracks> {
  const md = mediaDevices();
  if (!md?.getUserMedia) return { audio: null, video: null, problem: { code: 'no_device', missing: 'both' } };

  const listed = await listDevices();
  // Browsers list devices (without labels) before permission; an empty list means there are none.
  const wantAudio = listed.microphones.length > 0;
  const wantVideo = listed.cameras.length > 0;
  if (!wantAudio && !wantVideo) return { audio: null, video: null, problem: { code: 'no_device', missing: 'both' } };

  let firstProblem: MediaProblemCode | null = null;
  try {
    const stream = await md.getUserMedia({
      audio: wantAudio ? constraintsFor('audio', choice.audioDeviceId) : false,
      video: wantVideo ? constraintsFor('video', choice.videoDeviceId) : false,
    });
    const audio = stream.getAudioTracks()[0] ?? null;
    const video = stream.getVideoTracks()[0] ?? null;
    const missing = missingOf(audio, video);
    return { audio, video, problem: missing ? { code: 'no_device', missing } : null };
  } catch (error) {
    firstProblem = problemCode(error);
  }

  // One of the two is the trouble: try each alone. After a refusal only
  // those already granted are asked for, so the user is not prompted again.
  const refused = firstProblem === 'permission_denied';
  const tryOne = async (kind: DeviceKind, wanted: boolean, deviceId?: string): Promise<MediaStreamTrack | null> => {
    if (!wanted) return null;
    if (refused && !(await permissionGranted(kind === 'audio' ? 'microphone' : 'camera'))) return null;
    try {
      return await openTrack(kind, deviceId);
    } catch {
      if (!deviceId) return null;
      return openTrack(kind).catch(() => null); // the chosen device is gone: take the default one
    }
  };
  const audio = await tryOne('audio', wantAudio, choice.audioDeviceId);
  const video = await tryOne('video', wantVideo, choice.videoDeviceId);
  const missing = missingOf(audio, video);
  if (!missing) return { audio, video, problem: null };
  const absent = (missing === 'camera' && !wantVideo) || (missing === 'microphone' && !wantAudio);
  return { audio, video, problem: { code: absent ? 'no_device' : firstProblem ?? 'device_in_use', missing } };
}

/** A screen, window or tab to share (video only). Throws NotAllowedError when the user cancels. */
export async function openScreen(): Promise<MediaStreamTrack> {
  const md = mediaDevices();
  if (!md?.getDisplayMedia) throw new DOMException('screen sharing is not available', 'NotSupportedError');
  const stream = await md.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
  const track = stream.getVideoTracks()[0];
  if (!track) throw new DOMException('no screen track', 'NotFoundError');
  if ('contentHint' in track) track.contentHint = 'detail';
  return track;
}

export function canShareScreen(): boolean {
  return typeof mediaDevices()?.getDisplayMedia === 'function';
}
