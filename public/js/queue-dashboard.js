// Keeps the clerk's queue current without reloading the page: polls
// /queue.json and updates the count, the list of waiting customers (each
// with its own Accept form, as the server renders it) and the "accept next"
// button. A customer who starts waiting puts the count in the tab title,
// "(1) …", and plays a short tone if the clerk switched the sound on (the
// toggle is remembered in this browser; off by default). Texts come from
// the panel's data attributes, translated by the server.
(function () {
  var panel = document.getElementById('queue-panel');
  var count = document.getElementById('queue-count');
  var accept = document.getElementById('accept-next');
  var list = document.getElementById('queue-list');
  var soundButton = document.getElementById('queue-sound');
  if (!panel || !count) return;
  var SOUND_KEY = 'vclerk.queue-sound';
  var baseTitle = document.title;
  var lang = document.documentElement.lang || undefined;
  // Times as the server writes them: the organisation's time zone, 24 hours also in English.
  var zoneMeta = document.querySelector('meta[name="vclerk-time-zone"]');
  var timeFormat;
  try {
    timeFormat = new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : lang, { timeStyle: 'short', timeZone: zoneMeta ? zoneMeta.content : undefined });
  } catch (e) {
    timeFormat = new Intl.DateTimeFormat(lang, { timeStyle: 'short' });
  }
  var csrfInput = panel.querySelector('input[name="_csrf"]');
  var shown = -1;
  var alerts = 0;
  // The customers already known: the server-rendered ones are no news.
  var known = {};
  if (list) {
    Array.prototype.forEach.call(list.querySelectorAll('li[data-entry-id]'), function (li) {
      known[li.getAttribute('data-entry-id')] = true;
    });
  }

  var text = function (name, params) {
    var template = panel.getAttribute('data-text-' + name) || '';
    return template.replace(/\{\{\s*(\w+)\s*\}\}/g, function (m, key) { return params && key in params ? String(params[key]) : m; });
  };

  // ---- sound: a short two-tone chime made with WebAudio (no file) ----------
  var storage = null;
  try { storage = window.localStorage; } catch (e) { storage = null; }
  var soundOn = !!storage && storage.getItem(SOUND_KEY) === 'on';
  var audio = null;
  var audioContext = function () {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audio && Ctx) audio = new Ctx();
    return audio;
  };
  var chime = function () {
    var ctx = audioContext();
    if (!ctx) return;
    if (ctx.state === 'suspended') ctx.resume().catch(function () {});
    var start = ctx.currentTime + 0.01;
    [880, 660].forEach(function (freq, i) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      var t0 = start + i * 0.18;
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t0);
      gain.gain.exponentialRampToValueAtTime(0.25, t0 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.16);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0);
      osc.stop(t0 + 0.17);
    });
  };
  var showSound = function () {
    if (soundButton) soundButton.setAttribute('aria-pressed', String(soundOn));
  };
  if (soundButton) {
    soundButton.hidden = false;
    showSound();
    soundButton.addEventListener('click', function () {
      soundOn = !soundOn;
      if (storage) {
        try { storage.setItem(SOUND_KEY, soundOn ? 'on' : 'off'); } catch (e) { /* private mode: for this page only */ }
      }
      showSound();
      // A click may start audio: the tone confirms it works.
      if (soundOn) chime();
    });
    // The browser starts audio only after a click on the page: the first one unlocks it.
    document.addEventListener('pointerdown', function () {
      if (soundOn && audioContext() && audio.state === 'suspended') audio.resume().catch(function () {});
    }, { once: true });
  }

  // ---- the list ------------------------------------------------------------
  var entryItem = function (entry) {
    var li = document.createElement('li');
    li.setAttribute('data-entry-id', entry.id);
    var form = document.createElement('form');
    form.method = 'post';
    form.action = '/queue/accept';
    form.className = 'inline-form';
    var csrf = document.createElement('input');
    csrf.type = 'hidden';
    csrf.name = '_csrf';
    csrf.value = csrfInput ? csrfInput.value : '';
    var id = document.createElement('input');
    id.type = 'hidden';
    id.name = 'entry_id';
    id.value = entry.id;
    var label = document.createElement('span');
    label.textContent = entry.label;
    var since = document.createElement('small');
    since.textContent = text('waiting-since', { time: timeFormat.format(new Date(entry.waitingSince)) });
    var button = document.createElement('button');
    button.type = 'submit';
    button.className = 'outline';
    button.textContent = text('accept');
    form.append(csrf, id, label, since, button);
    li.appendChild(form);
    return li;
  };

  /** Makes the list show `entries` in order, keeping the items (and any focus in them) that stay. */
  var renderList = function (entries) {
    if (!list) return;
    var items = {};
    Array.prototype.forEach.call(list.querySelectorAll('li[data-entry-id]'), function (li) {
      items[li.getAttribute('data-entry-id')] = li;
    });
    var wanted = {};
    entries.forEach(function (entry, i) {
      wanted[entry.id] = true;
      var li = items[entry.id] || entryItem(entry);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    Object.keys(items).forEach(function (id) {
      if (!wanted[id]) items[id].remove();
    });
    list.hidden = entries.length === 0;
  };

  var update = function (entries) {
    var n = entries.length;
    if (n !== shown) {
      shown = n;
      var template = panel.getAttribute(n === 1 ? 'data-text-count-one' : 'data-text-count-other') || '';
      count.textContent = template.replace('{{count}}', String(n));
      if (accept) accept.disabled = n === 0;
      document.title = n > 0 ? '(' + n + ') ' + baseTitle : baseTitle;
    }
    renderList(entries);
    var arrived = false;
    entries.forEach(function (entry) {
      if (!known[entry.id]) arrived = true;
      known[entry.id] = true;
    });
    if (arrived) {
      alerts++;
      panel.setAttribute('data-alerts', String(alerts));
      if (soundOn) chime();
    }
  };

  var poll = function () {
    fetch('/queue.json', { headers: { Accept: 'application/json' }, cache: 'no-store' })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (data) {
        if (data && data.assignedCallId) {
          // Automatic routing gave this clerk a customer: open the call.
          location.href = '/calls/' + data.assignedCallId;
          return;
        }
        if (data && Array.isArray(data.entries)) update(data.entries);
        setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 8000); });
  };
  update(list ? Array.prototype.map.call(list.querySelectorAll('li[data-entry-id]'), function (li) { return { id: li.getAttribute('data-entry-id') }; }) : []);
  setTimeout(poll, 3000);
})();
