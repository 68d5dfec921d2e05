/**
 * `#autojoin` in the call page's address: the participant already chose
 * to talk (the clerk pressed Accept in the queue, the customer waited in
 * it), so the page joins without another click. The fragment never reaches
 * the server; it is removed at once, so a reload shows the device check.
 */
export function takeAutojoin(win: Window = window): boolean {
  if (win.location.hash !== '#autojoin') return false;
  win.history.replaceState(win.history.state, '', win.location.pathname + win.location.search);
  return true;
}
