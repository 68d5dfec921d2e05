// "Print" buttons of the call summaries. Progressive enhancement: the
// button is hidden until this script runs (the browser's own print works
// without it); the print styles hide navigation and buttons.
document.querySelectorAll('[data-print]').forEach((button) => {
  if (typeof window.print !== 'function') return;
  button.hidden = false;
  button.addEventListener('click', () => window.print());
});
