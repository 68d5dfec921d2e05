// The customer link of a call just started arrives in the URL fragment
// (#customer=<token>), which is never sent to the server. Show it, and keep
// the fragment so that a reload of this page shows it again.
(function () {
  var match = /^#customer=([A-Za-z0-9_-]{43})$/.exec(location.hash);
  var box = document.querySelector('[data-customer-link]');
  var field = document.getElementById('customer-link');
  if (!match || !box || !field) return;
  var link = field.getAttribute('data-link-base') + match[1];
  field.value = link;
  field.setAttribute('value', link);
  box.hidden = false;
  var note = document.querySelector('[data-customer-link-note]');
  if (note) note.hidden = true;
})();
