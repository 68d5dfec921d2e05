/*
 * VClerk website widget. Embed on the organisation's own site:
 *   <script src="https://<appliance>/widget.js" data-org="<organisation id>" async></script>
 * Adds a "Talk to a clerk" button (only for origins the organisation allows)
 * that opens the appliance's queue page. Small, no dependencies, no cookies.
 */
(function () {
  var script = document.currentScript;
  if (!script || !script.src) return;
  var base = new URL(script.src).origin;
  var org = script.getAttribute('data-org') || '';
  if (!/^[a-z0-9][a-z0-9-]{1,62}$/.test(org)) return;
  var lang = (document.documentElement.lang || navigator.language || 'en').slice(0, 2);
  fetch(base + '/q/' + org + '/widget.json', { headers: { Accept: 'application/json', 'Accept-Language': lang }, credentials: 'omit' })
    .then(function (res) { return res.ok ? res.json() : null; })
    .then(function (data) {
      if (!data) return;
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'vclerk-widget-button';
      button.textContent = data.label;
      button.disabled = !data.available;
      var s = button.style;
      s.position = 'fixed'; s.right = '1.5rem'; s.bottom = '1.5rem'; s.zIndex = '2147483000';
      s.padding = '0.8rem 1.2rem'; s.border = '0'; s.borderRadius = '999px'; s.font = '600 1rem system-ui, sans-serif';
      // The organisation's brand colour (checked: it goes into a style), grey while nobody is available.
      var hex = /^#[0-9a-f]{6}$/i;
      s.background = !data.available ? '#6b7280' : hex.test(data.color) ? data.color : '#1d4ed8';
      s.color = data.available && hex.test(data.textColor) ? data.textColor : '#fff'; s.cursor = data.available ? 'pointer' : 'default';
      s.boxShadow = '0 4px 14px rgba(0,0,0,.25)';
      button.addEventListener('click', function () {
        window.open(base + data.url, 'vclerk-' + org, 'noopener');
      });
      document.body.appendChild(button);
    })
    .catch(function () { /* the widget stays away when the appliance cannot be reached */ });
})();
