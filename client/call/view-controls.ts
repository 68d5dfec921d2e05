import { ModalQuestion } from './consent-dialog';
import type { Translate } from './page';
import type { CallUi } from './ui';

export interface ViewControls {
  openShortcuts(): void;
  /** Escape: closes the More menu or the privacy details; false when neither was open. */
  closeMenus(): boolean;
  /** The call is over: leave picture-in-picture and full screen. */
  exitAll(): void;
}

/**
 * The control bar's More menu: picture-in-picture of the other side's video
 * (where document.pictureInPictureEnabled), full screen (where
 * document.fullscreenEnabled), the settings dialog (camera, microphone,
 * speaker) and the keyboard shortcuts dialog.
 */
export function installViewControls(ui: CallUi, t: Translate): ViewControls {
  const more = document.getElementById('more-controls') as HTMLDetailsElement | null;
  const pip = document.getElementById('pip') as HTMLButtonElement | null;
  const fullscreen = document.getElementById('fullscreen') as HTMLButtonElement | null;
  const openSettings = document.getElementById('open-settings') as HTMLButtonElement | null;
  const openShortcuts = document.getElementById('open-shortcuts') as HTMLButtonElement | null;
  const shortcutsDialog = document.getElementById('shortcuts-dialog');
  const shortcuts = shortcutsDialog instanceof HTMLDialogElement ? new ModalQuestion(shortcutsDialog, { mustAnswer: false }) : null;
  const settings = new ModalQuestion(ui.stageSettings, { mustAnswer: false });
  const privacy = document.querySelector<HTMLDetailsElement>('.call-privacy-details');

  const label = (button: HTMLButtonElement, key: string) => {
    const span = button.querySelector('span');
    if (span) span.textContent = t(key);
  };
  const closeMore = () => {
    if (more) more.open = false;
  };

  // Picture-in-picture: the shared screen if there is one, else the other side's camera.
  if (pip && document.pictureInPictureEnabled) {
    pip.hidden = false;
    const render = () => {
      const active = document.pictureInPictureElement !== null;
      pip.setAttribute('aria-pressed', String(active));
      label(pip, active ? 'pip_exit' : 'pip');
    };
    pip.addEventListener('click', () => {
      closeMore();
      const video = ui.remoteScreen.hidden ? ui.remoteVideo : ui.remoteScreen;
      const action = document.pictureInPictureElement ? document.exitPictureInPicture() : video.requestPictureInPicture().then(() => undefined);
      action.catch((error: unknown) => console.warn('vclerk: picture-in-picture failed', error));
    });
    for (const video of [ui.remoteVideo, ui.remoteScreen]) {
      video.addEventListener('enterpictureinpicture', render);
      video.addEventListener('leavepictureinpicture', render);
    }
  }

  // Full screen: the whole call page, control bar included.
  if (fullscreen && document.fullscreenEnabled) {
    fullscreen.hidden = false;
    fullscreen.addEventListener('click', () => {
      closeMore();
      const action = document.fullscreenElement ? document.exitFullscreen() : document.documentElement.requestFullscreen();
      action.catch((error: unknown) => console.warn('vclerk: full screen failed', error));
    });
    document.addEventListener('fullscreenchange', () => {
      const active = document.fullscreenElement !== null;
      fullscreen.setAttribute('aria-pressed', String(active));
      label(fullscreen, active ? 'fullscreen_exit' : 'fullscreen');
    });
  }

  openSettings?.addEventListener('click', () => {
    closeMore();
    settings.open();
  });
  const showShortcuts = () => {
    closeMore();
    shortcuts?.open();
  };
  openShortcuts?.addEventListener('click', showShortcuts);

  // The More menu closes on a click elsewhere.
  document.addEventListener('click', (event) => {
    if (more?.open && event.target instanceof Node && !more.contains(event.target)) closeMore();
  });

  return {
    openShortcuts: showShortcuts,
    closeMenus: () => {
      if (more?.open) {
        closeMore();
        more.querySelector('summary')?.focus();
        return true;
      }
      if (privacy?.open) {
        privacy.open = false;
        privacy.querySelector('summary')?.focus();
        return true;
      }
      return false;
    },
    exitAll: () => {
      if (document.pictureInPictureElement) void document.exitPictureInPicture().catch(() => undefined);
      if (document.fullscreenElement) void document.exitFullscreen().catch(() => undefined);
    },
  };
}
