// Keeps the clerk's queue count current without reloading the page: polls
// /queue.json and updates the count and the "accept next" button. The
// list itself refreshes with the page.
(function () {
  var panel = document.getElementById('queue-panel');
  var count = document.getElementById('queue-count');
  var accept = document.getElementById('accept-next');
  if (!panel || !count) return;
  var shown = -1;
  var poll = function () {
    fetch('/queue.json', { headers: { Accept: 'application/json' }, cache: 'no-store' })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (data) {
        if (data && data.assignedCallId) {
          // Automatic routing gave this clerk a customer: open the call.
          location.href = '/calls/' + data.assignedCallId;
          return;
        }
        if (data) {
          var n = data.entries.length;
          if (n !== shown) {
            shown = n;
            var template = panel.getAttribute(n === 1 ? 'data-text-count-one' : 'data-text-count-other') || '';
            count.textContent = template.replace('{{count}}', String(n));
            if (accept) accept.disabled = n === 0;
          }
        }
        setTimeout(poll, 4000);
      })
      .catch(function () { setTimeout(poll, 8000); });
  };
  setTimeout(poll, 4000);
})();
