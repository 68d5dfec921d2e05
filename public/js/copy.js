// "Copy" buttons for read-only fields (one-time links). Progressive
// enhancement: the button is hidden until this script runs.
document.querySelectorAll('[data-copy-target]').forEach((button) => {
  const field = document.getElementById(button.getAttribute('data-copy-target'));
  if (!field || !navigator.clipboard) return;
  button.hidden = false;
  const label = button.textContent;
  button.addEventListener('click', () => {
    field.select();
    navigator.clipboard.writeText(field.value).then(() => {
      button.textContent = '✓ ' + label;
    });
  });
});
