/** What the keys do; `escape` answers whether it closed something. */
export interface ShortcutActions {
  microphone(): void;
  camera(): void;
  chat(): void;
  help(): void;
  escape(): boolean;
}

/** Typing in a field (or any editable element): no shortcut fires. */
function typing(target: EventTarget | null): boolean {
  if (!(target instanceof Element)) return false;
  if (target instanceof HTMLElement && target.isContentEditable) return true;
  return target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]') !== null;
}

/**
 * The call page's keyboard shortcuts (listed in #shortcuts-dialog): M the
 * microphone, V the camera, C the chat, ? this list, Escape closes the open
 * menu, sheet or panel. Never while typing, never with Ctrl, Alt or Meta,
 * and nothing behind an open modal dialog (it handles its own Escape).
 */
export function installShortcuts(actions: ShortcutActions): void {
  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (typing(event.target)) return;
    if (document.querySelector('dialog[open]')) return;
    let handled = true;
    switch (event.key) {
      case 'm':
      case 'M':
        actions.microphone();
        break;
      case 'v':
      case 'V':
        actions.camera();
        break;
      case 'c':
      case 'C':
        actions.chat();
        break;
      case '?':
        actions.help();
        break;
      case 'Escape':
        handled = actions.escape();
        break;
      default:
        handled = false;
    }
    if (handled) event.preventDefault();
  });
}
