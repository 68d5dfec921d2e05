// The waiting page: polls the ticket's status (the ticket is in the URL
// fragment and goes to the server only in a request header), shows the
// position and estimate, and moves the customer into the call once a clerk
// accepts (the call page then joins by itself). Strings come from data attributes (translated by the server).
(function () {
  var root = document.getElementById('queue-wait');
  var match = /^#ticket=([A-Za-z0-9_-]{43})$/.exec(location.hash);
  var status = document.getElementById('queue-status');
  var estimate = document.getElementById('queue-estimate');
  if (!root || !status) return;
  var text = function (name, params) {
    var template = root.getAttribute('data-text-' + name) || '';
    return template.replace(/\{\{\s*(\w+)\s*\}\}/g, function (m, key) { return params && key in params ? String(params[key]) : m; });
  };
  if (!match) { status.textContent = text('gone'); return; }
  var ticket = match[1];
  var timer;
  var poll = function () {
    fetch('/queue/ticket', { headers: { 'X-Queue-Ticket': ticket, Accept: 'application/json' }, cache: 'no-store' })
      .then(function (res) { return res.ok ? res.json() : { status: 'gone' }; })
      .then(function (data) {
        if (data.status === 'waiting') {
          status.textContent = text('position', { position: data.position });
          estimate.textContent = text('estimate', { minutes: Math.max(1, Math.round(data.estimatedWaitSeconds / 60)) });
          timer = setTimeout(poll, 3000);
        } else if (data.status === 'accepted') {
          status.textContent = text('accepted');
          estimate.textContent = '';
          // The customer waited to talk: the call page joins without another click.
          location.href = data.joinPath + '#autojoin';
        } else {
          status.textContent = text(data.status === 'left' ? 'left' : 'gone');
          estimate.textContent = '';
        }
      })
      .catch(function () { timer = setTimeout(poll, 5000); });
  };
  poll();
  var leave = document.getElementById('leave-queue');
  if (leave) leave.addEventListener('click', function () {
    clearTimeout(timer);
    fetch('/queue/ticket/leave', { method: 'POST', headers: { 'X-Queue-Ticket': ticket, 'X-CSRF-Token': root.getAttribute('data-csrf') || '' } })
      .then(function () { status.textContent = text('left'); estimate.textContent = ''; leave.hidden = true; });
  });
})();
