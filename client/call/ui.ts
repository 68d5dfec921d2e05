import type { Translate } from './page';
import type { Quality } from './quality';
import type { CallState, Source } from './session';

function byId<T extends HTMLElement>(id: string, type: { new (): T }): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`call page: #${id} is missing`);
  return el;
}

function optionalById<T extends HTMLElement>(id: string, type: { new (): T }): T | null {
  const el = document.getElementById(id);
  return el instanceof type ? el : null;
}

/** Shows a track in a media element (or nothing), starting playback. */
function attach(el: HTMLMediaElement, track: MediaStreamTrack | null): void {
  if (!track) {
    el.srcObject = null;
    return;
  }
  const shown = el.srcObject instanceof MediaStream ? el.srcObject.getTracks()[0] : undefined;
  if (shown === track) return;
  el.srcObject = new MediaStream([track]);
  // Joining was a click on this page, so the browser allows playback; if not, autoplay starts it later.
  el.play().catch(() => undefined);
}

/**
 * DOM updates of the call page, and nothing else: no media, no network.
 * The element ids are a contract with the views and the browser tests.
 */
export class CallUi {
  readonly status = byId('call-status', HTMLElement);
  readonly quality = byId('quality', HTMLElement);
  readonly problem = byId('media-error', HTMLElement);
  readonly prejoin = byId('prejoin', HTMLElement);
  readonly preview = byId('local-preview', HTMLVideoElement);
  readonly cameraSelect = byId('camera-select', HTMLSelectElement);
  readonly microphoneSelect = byId('microphone-select', HTMLSelectElement);
  readonly join = byId('join', HTMLButtonElement);
  readonly deviceSettings = byId('device-settings', HTMLElement);
  readonly stage = byId('stage', HTMLElement);
  readonly stageMedia = byId('stage-media', HTMLElement);
  readonly stageSettings = byId('stage-settings', HTMLDialogElement);
  readonly stageSettingsBody = byId('stage-settings-body', HTMLElement);
  readonly speakerSetting = byId('speaker-setting', HTMLElement);
  readonly speakerSelect = byId('speaker-select', HTMLSelectElement);
  readonly remoteVideo = byId('remote-video', HTMLVideoElement);
  readonly remoteScreen = byId('remote-screen', HTMLVideoElement);
  readonly remoteAudio = byId('remote-audio', HTMLAudioElement);
  readonly remotePlaceholder = byId('remote-placeholder', HTMLElement);
  readonly localVideo = byId('local-video', HTMLVideoElement);
  readonly selfView = byId('self-view', HTMLElement);
  readonly selfPlaceholder = byId('self-placeholder', HTMLElement);
  readonly toggleMicrophone = byId('toggle-microphone', HTMLButtonElement);
  readonly toggleCamera = byId('toggle-camera', HTMLButtonElement);
  readonly shareScreen = optionalById('share-screen', HTMLButtonElement);
  readonly leave = byId('leave', HTMLButtonElement);
  readonly afterCall = byId('after-call', HTMLElement);
  readonly rejoin = byId('rejoin', HTMLButtonElement);
  readonly openSummary = optionalById('open-summary', HTMLAnchorElement);

  private state: CallState = 'idle';
  private remote = { present: false, hasLeft: false, video: false, videoPaused: false };

  constructor(private readonly t: Translate) {
    // The other side's camera has no sound of its own (audio plays in #remote-audio).
    this.remoteVideo.muted = true;
    this.remoteScreen.muted = true;
    this.preview.muted = true;
    this.localVideo.muted = true;
    // Where the bar shows icons only (narrow screens), each control's name is its tooltip too.
    for (const control of document.querySelectorAll<HTMLElement>('.call-controls .control')) {
      const label = control.querySelector('.control-label')?.textContent?.trim();
      if (label && !control.title) control.title = label;
    }
  }

  get currentState(): CallState {
    return this.state;
  }

  setState(state: CallState): void {
    this.state = state;
    this.status.dataset.state = state;
    this.renderStatus();
  }

  private renderStatus(): void {
    const waiting = this.state === 'connected' && !this.remote.present;
    this.status.dataset.remote = this.remote.present ? 'present' : this.remote.hasLeft ? 'left' : 'waiting';
    this.status.textContent = this.t(!waiting ? `status_${this.state}` : this.remote.hasLeft ? 'remote_left' : 'status_waiting');
  }

  setQuality(quality: Quality): void {
    const label = this.t(`quality_${quality}`);
    this.quality.dataset.quality = quality;
    this.quality.setAttribute('aria-label', label);
    this.quality.title = label;
  }

  /** Shows a problem message (role=alert), or hides it with null. */
  showProblem(problem: { code: string; text: string } | null): void {
    if (!problem) {
      this.problem.hidden = true;
      this.problem.textContent = '';
      delete this.problem.dataset.code;
      return;
    }
    if (this.problem.dataset.code === problem.code && this.problem.textContent === problem.text && !this.problem.hidden) return;
    this.problem.dataset.code = problem.code;
    this.problem.textContent = problem.text;
    this.problem.hidden = false;
  }

  fillDevices(select: HTMLSelectElement, devices: MediaDeviceInfo[], selectedId: string | undefined, kind: 'camera' | 'microphone' | 'speaker'): void {
    const options = devices.map((device, i) => {
      const option = document.createElement('option');
      option.value = device.deviceId;
      option.textContent = device.label || this.t(`${kind}_n`, { n: i + 1 });
      return option;
    });
    if (options.length === 0) {
      const none = document.createElement('option');
      none.value = '';
      none.textContent = this.t(`no_${kind}`);
      options.push(none);
    }
    select.replaceChildren(...options);
    select.disabled = devices.length === 0;
    if (selectedId && devices.some((d) => d.deviceId === selectedId)) select.value = selectedId;
  }

  setPreview(track: MediaStreamTrack | null): void {
    attach(this.preview, track);
    this.preview.classList.toggle('is-empty', !track);
  }

  /** From the pre-join panel to the call stage; the device choice moves along. */
  enterCall(): void {
    this.prejoin.hidden = true;
    attach(this.preview, null);
    this.stageSettingsBody.append(this.deviceSettings);
    this.stage.hidden = false;
    this.renderRemote();
  }

  /** The self-view; with no camera or the camera off a placeholder takes its place (it does not vanish). */
  setLocalVideo(track: MediaStreamTrack | null, cameraOff: boolean): void {
    attach(this.localVideo, track);
    const off = !track || cameraOff;
    this.selfView.classList.toggle('is-off', off);
    this.selfPlaceholder.hidden = !off;
  }

  setRemoteTrack(source: Source, track: MediaStreamTrack | null): void {
    if (source === 'microphone') {
      attach(this.remoteAudio, track);
    } else if (source === 'camera') {
      attach(this.remoteVideo, track);
      this.remote.video = track !== null;
      if (!track) this.remote.videoPaused = false;
      this.renderRemote();
    } else {
      attach(this.remoteScreen, track);
      this.remoteScreen.hidden = !track;
      this.stageMedia.classList.toggle('has-screen', track !== null);
    }
  }

  setRemotePaused(source: Source, paused: boolean): void {
    if (source !== 'camera') return;
    this.remote.videoPaused = paused;
    this.renderRemote();
  }

  setRemotePresent(present: boolean, reason: 'joined' | 'left' | 'sync'): void {
    this.remote.present = present;
    if (reason === 'left' && !present) this.remote.hasLeft = true;
    if (present) this.remote.hasLeft = false;
    this.renderRemote();
    this.renderStatus();
  }

  private renderRemote(): void {
    const showsVideo = this.remote.video && !this.remote.videoPaused;
    this.remoteVideo.classList.toggle('is-off', !showsVideo);
    let text = '';
    if (!showsVideo) {
      if (this.remote.present) text = this.t(this.remote.video ? 'remote_camera_off' : 'remote_no_video');
      else text = this.t(this.remote.hasLeft ? 'remote_left' : 'remote_waiting');
    }
    this.remotePlaceholder.textContent = text;
    this.remotePlaceholder.hidden = text === '';
  }

  setPressed(button: HTMLButtonElement, pressed: boolean): void {
    button.setAttribute('aria-pressed', String(pressed));
  }

  /** A control's pressed state and its words: "Mute" / "Unmute" and the like (aria-pressed="true" = muted, off, sharing). */
  setControl(button: HTMLButtonElement, pressed: boolean, words: { off: string; on: string }): void {
    this.setPressed(button, pressed);
    const label = button.querySelector('.control-label') ?? button;
    label.textContent = this.t(pressed ? words.on : words.off);
    button.title = label.textContent; // the name as a tooltip where the bar shows icons only
  }

  setMicrophoneMuted(muted: boolean): void {
    this.setControl(this.toggleMicrophone, muted, { off: 'toggle_microphone', on: 'microphone_unmute' });
  }

  setCameraOff(off: boolean): void {
    this.setControl(this.toggleCamera, off, { off: 'toggle_camera', on: 'camera_turn_on' });
  }

  setSharing(sharing: boolean): void {
    if (this.shareScreen) this.setControl(this.shareScreen, sharing, { off: 'share_screen', on: 'share_screen_stop' });
  }

  /** The call is over: the stage goes, the status (and any problem) stays; rejoining is offered after leaving. */
  showFinished(state: CallState, canRejoin: boolean): void {
    this.prejoin.hidden = true;
    this.stage.hidden = true;
    for (const el of [this.remoteVideo, this.remoteScreen, this.remoteAudio, this.localVideo, this.preview]) attach(el, null);
    const summary = state === 'ended' && this.openSummary !== null;
    this.rejoin.hidden = !canRejoin;
    if (this.openSummary) this.openSummary.hidden = !summary;
    this.afterCall.hidden = !canRejoin && !summary;
    if (state === 'ended') document.querySelectorAll<HTMLElement>('[data-hide-when-ended]').forEach((el) => (el.hidden = true));
  }
}
