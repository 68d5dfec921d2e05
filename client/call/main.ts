import { canChooseSpeaker, canShareScreen, listDevices, openLocalTracks, openScreen, openTrack, problemCode, type DeviceKind, type MediaProblem, type MediaProblemCode, type Missing } from './devices';
import { readPageConfig, readStrings, type Translate } from './page';
import { LevelMeter } from './level';
import { QualityMonitor } from './quality';
import { Curation } from './curation';
import { RecordingControls } from './recording';
import { CallSession, type CallState } from './session';
import { Signalling } from './signalling';
import { CallUi } from './ui';
import { SessionKeepalive } from './keepalive';
import { Panels } from './panels';
import { installShortcuts } from './shortcuts';
import { installEndCall } from './end-call';
import { installViewControls } from './view-controls';
import { takeAutojoin } from './autojoin';
import { SoundUnlock } from './sound';

/**
 * Test hook, on `window.vclerkCall` from page load on (browser tests read it
 * with page.evaluate; the page itself does not use it):
 * - `state`: the call state, as in `#call-status[data-state]`
 *   (idle | joining | connected | reconnecting | left | ended | error);
 * - `peerId`: this participant's peer id in the media room, once joined;
 * - `stats()`: receive statistics summed over the current consumers
 *   (inbound-rtp): `{ video: { framesDecoded, bytesReceived }, audio:
 *   { packetsReceived }, screen?: { framesDecoded } }`, zeros before joining.
 *   Consumers made by a rejoin start again from zero.
 */
export interface VclerkCallHook {
  readonly state: CallState;
  readonly peerId: string | null;
  stats(): ReturnType<CallSession['stats']>;
}

declare global {
  interface Window {
    vclerkCall?: VclerkCallHook;
  }
}

const SESSION_PROBLEMS = new Set(['connection_refused', 'token_invalid', 'call_ended', 'call_not_found', 'unauthenticated', 'forbidden', 'unsupported_browser', 'consent_required']);

function problemText(t: Translate, code: string, device: MediaProblem | null): string {
  if (device && device.code === code) return `${t(`error_${code}_${device.missing}`)} ${t(`without_${device.missing}`)}`;
  return t(SESSION_PROBLEMS.has(code) ? `error_${code}` : 'error_connection_refused');
}

function start(): void {
  const root = document.getElementById('call');
  if (!root) return;
  const t = readStrings(document);
  const ui = new CallUi(t);
  const config = readPageConfig(root);
  let session: CallSession | null = null;

  window.vclerkCall = {
    get state() {
      return session?.state ?? ui.currentState;
    },
    get peerId() {
      return session?.peerId ?? null;
    },
    stats: () => (session ? session.stats() : Promise.resolve({ video: { framesDecoded: 0, bytesReceived: 0 }, audio: { packetsReceived: 0 } })),
  };

  // Problems: the session's (connection) win over the devices' while both exist.
  let deviceProblem: MediaProblem | null = null;
  let sessionProblem: string | null = null;
  const renderProblem = () => {
    const code = sessionProblem ?? deviceProblem?.code ?? null;
    ui.showProblem(code ? { code, text: problemText(t, code, deviceProblem) } : null);
  };

  if (!config) {
    ui.setState('error');
    sessionProblem = 'call_not_found';
    renderProblem();
    return;
  }
  if (config.callStatus === 'ended') {
    ui.setState('ended');
    ui.showFinished('ended', false);
    return;
  }
  ui.setState('idle');
  ui.setQuality('unknown');
  // The clerk's session is renewed while the page is open and the call not over (customers have none).
  const keepalive = config.role === 'clerk' ? SessionKeepalive.fromPage(document) : null;
  keepalive?.start();
  const recording = new RecordingControls(config, t);
  const panels = new Panels(t);
  installEndCall(t);
  const view = installViewControls(ui, t);
  const sound = new SoundUnlock(ui.remoteAudio, t, ui.problem);

  // ---- camera and microphone ----------------------------------------------

  const local: Record<DeviceKind, MediaStreamTrack | null> = { audio: null, video: null };

  const refreshDeviceLists = async () => {
    const lists = await listDevices();
    ui.fillDevices(ui.cameraSelect, lists.cameras, local.video?.getSettings().deviceId, 'camera');
    ui.fillDevices(ui.microphoneSelect, lists.microphones, local.audio?.getSettings().deviceId, 'microphone');
    if (canChooseSpeaker() && lists.speakers.length > 0) {
      ui.fillDevices(ui.speakerSelect, lists.speakers, ui.remoteAudio.sinkId || undefined, 'speaker');
      ui.speakerSetting.hidden = false;
    }
  };

  const levelMeter = new LevelMeter(document.getElementById('mic-level') as HTMLMeterElement);
  document.addEventListener('click', () => levelMeter.wake());

  const showLocal = () => {
    ui.setPreview(local.video);
    levelMeter.attach(local.audio);
    ui.setLocalVideo(local.video, session?.isMuted('camera') ?? false);
    ui.toggleMicrophone.disabled = !local.audio;
    ui.toggleCamera.disabled = !local.video;
  };

  const useTrack = (kind: DeviceKind, track: MediaStreamTrack | null) => {
    local[kind] = track;
    // A device unplugged during the call: fall back to the default one.
    track?.addEventListener('ended', () => {
      if (local[kind] === track) void switchDevice(kind, undefined);
    });
  };

  /** What is missing now; a new failure names the reason, else the earlier reason stays. */
  const updateDeviceProblem = (code?: MediaProblemCode) => {
    const missing: Missing | null = !local.audio && !local.video ? 'both' : !local.video ? 'camera' : !local.audio ? 'microphone' : null;
    if (!missing) deviceProblem = null;
    else deviceProblem = { code: code ?? deviceProblem?.code ?? 'no_device', missing };
  };

  const switchDevice = async (kind: DeviceKind, deviceId: string | undefined) => {
    local[kind]?.stop(); // first: some phones cannot open a second camera while one is open
    let track: MediaStreamTrack | null = null;
    let failure: MediaProblemCode | undefined;
    try {
      track = await openTrack(kind, deviceId || undefined);
    } catch (error) {
      failure = problemCode(error);
      track = await openTrack(kind).catch(() => null);
    }
    useTrack(kind, track);
    updateDeviceProblem(track ? undefined : failure);
    showLocal();
    renderProblem();
    if (session && track) {
      await session.replaceTrack(kind === 'audio' ? 'microphone' : 'camera', track).catch((error: unknown) => console.warn('vclerk: switching device failed', error));
    }
    await refreshDeviceLists();
  };

  const prepared = (async () => {
    const opened = await openLocalTracks();
    useTrack('audio', opened.audio);
    useTrack('video', opened.video);
    deviceProblem = opened.problem;
    showLocal();
    renderProblem();
    await refreshDeviceLists();
  })().catch((error: unknown) => console.error('vclerk: opening camera and microphone failed', error));

  ui.cameraSelect.addEventListener('change', () => void switchDevice('video', ui.cameraSelect.value));
  ui.microphoneSelect.addEventListener('change', () => void switchDevice('audio', ui.microphoneSelect.value));
  ui.speakerSelect.addEventListener('change', () => {
    ui.remoteAudio.setSinkId(ui.speakerSelect.value).catch((error: unknown) => console.warn('vclerk: choosing the speaker failed', error));
  });
  navigator.mediaDevices?.addEventListener?.('devicechange', () => void refreshDeviceLists());

  // ---- the call -----------------------------------------------------------

  const quality = new QualityMonitor(() => session?.transports() ?? [], (q) => ui.setQuality(q));

  const stopLocal = () => {
    for (const kind of ['audio', 'video'] as const) {
      local[kind]?.stop();
      local[kind] = null;
    }
  };

  const join = async () => {
    await prepared; // the browser's permission prompt may still be open
    const signalling = new Signalling(config.auth, config.node);
    const curation = new Curation(signalling, config, t);
    recording.use(signalling);
    session = new CallSession(signalling, {
      beforeJoin: () => recording.beforeJoin(),
      state: (state) => {
        ui.setState(state);
        if (state === 'connected') {
          curation.sync();
          recording.sync();
        }
      },
      remoteTrack: (source, track) => {
        ui.setRemoteTrack(source, track);
        if (source === 'microphone') sound.check();
      },
      remotePaused: (source, paused) => ui.setRemotePaused(source, paused),
      remotePresent: (present, reason) => ui.setRemotePresent(present, reason),
      problem: (code) => {
        sessionProblem = code;
        renderProblem();
      },
      screenShareEnded: () => ui.setSharing(false),
      finished: (state) => {
        for (const open of document.querySelectorAll<HTMLDialogElement>('#call dialog[open]')) open.close();
        view.exitAll();
        if (state === 'ended') keepalive?.stop();
        quality.stop();
        stopLocal();
        ui.showFinished(state, state === 'left' || sessionProblem === 'connection_refused');
      },
    });
    ui.enterCall();
    showLocal();
    ui.setMicrophoneMuted(false);
    ui.setCameraOff(false);
    ui.setSharing(false);
    if (ui.shareScreen) ui.shareScreen.hidden = !canShareScreen();
    session.start({ audio: local.audio, video: local.video });
    quality.start();
  };

  // Under "always" the join button also gives consent; declining joins unrecorded where allowed, else ends here.
  const alwaysRecorded = config.role === 'customer' && config.recording.mode === 'always';
  const joinUnrecorded = document.getElementById('join-unrecorded');
  const declineBeforeJoin = document.getElementById('consent-decline-prejoin');
  let unrecorded = false;
  joinUnrecorded?.addEventListener('click', () => {
    unrecorded = true;
    ui.join.click();
  });
  declineBeforeJoin?.addEventListener('click', () => {
    (declineBeforeJoin as HTMLButtonElement).disabled = true;
    void recording.declineWithoutJoining().finally(() => {
      const required = document.getElementById('recording-required');
      if (required) required.hidden = false;
    });
  });

  ui.join.addEventListener('click', () => {
    if (session) return;
    if (alwaysRecorded) recording.chooseBeforeJoin(unrecorded ? 'declined' : 'granted');
    ui.join.disabled = true;
    join().catch((error: unknown) => {
      console.error('vclerk: joining failed', error);
      ui.setState('error');
      sessionProblem = 'connection_refused';
      renderProblem();
    });
  });

  // aria-pressed="true" means muted / camera off / sharing.
  ui.toggleMicrophone.addEventListener('click', () => {
    if (!session) return;
    const muted = !session.isMuted('microphone');
    ui.setMicrophoneMuted(muted);
    void session.setMuted('microphone', muted);
  });

  ui.toggleCamera.addEventListener('click', () => {
    if (!session) return;
    const off = !session.isMuted('camera');
    ui.setCameraOff(off);
    ui.setLocalVideo(local.video, off);
    void session.setMuted('camera', off);
  });

  ui.shareScreen?.addEventListener('click', () => {
    if (!session) return;
    if (session.isSharingScreen()) {
      ui.setSharing(false);
      void session.stopScreenShare(false);
      return;
    }
    const current = session;
    openScreen()
      .then(async (track) => {
        ui.setSharing(true);
        await current.startScreenShare(track);
      })
      .catch((error: unknown) => {
        // Cancelling the browser's picker is not an error worth showing.
        ui.setSharing(current.isSharingScreen());
        if (!(error instanceof DOMException && error.name === 'NotAllowedError')) console.warn('vclerk: screen sharing failed', error);
      });
  });

  ui.leave.addEventListener('click', () => {
    ui.leave.disabled = true;
    void session?.leave();
  });

  ui.rejoin.addEventListener('click', () => window.location.reload());

  // Keyboard shortcuts, only while in the call (the buttons exist and act then).
  installShortcuts({
    microphone: () => {
      if (session && !ui.stage.hidden) ui.toggleMicrophone.click();
    },
    camera: () => {
      if (session && !ui.stage.hidden) ui.toggleCamera.click();
    },
    chat: () => {
      if (!ui.stage.hidden) panels.toggle('chat');
    },
    help: () => view.openShortcuts(),
    escape: () => view.closeMenus() || (!ui.stage.hidden && panels.closeLast()),
  });

  // Closing or leaving the page: disconnect now so the other side sees it at once.
  window.addEventListener('pagehide', (event) => {
    session?.close();
    if (!event.persisted) keepalive?.stop();
  });

  ui.join.disabled = false;
  // Accepted from the queue: join at once (not where joining is the recording consent, which needs its own click).
  if (takeAutojoin() && !alwaysRecorded) ui.join.click();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
