/*! thinnest embed widget. Served at /widget.js after the SDK (widget/embed/sdk.js): it is built on
 * ThinnestAI.createCall, not beside it.
 *
 *   ThinnestAI.init({ agentId, apiKey, position, theme, greeting, primaryColor, autoOpen, context,
 *                     serverUrl, fallbackPhone, requestMicrophoneEarly });
 *   ThinnestAI.on('call:start' | 'call:end' | 'call:error' | 'transcript' | 'transcript_partial',
 *                 callback);
 *
 * One click on the floating button opens the panel and starts the call (the documentation: "When
 * clicked, it connects to your voice agent"). While the call runs the button itself shows it, with
 * its own "End call", so the panel may be closed. Visitors read plain messages; the operator's
 * detail goes to the console and to call:error.
 *
 * The widget lives in a Shadow DOM, so the host page's styles and its own do not mix.
 */
(function (global) {
  'use strict';

  var api = global.ThinnestAI;
  if (!api || !api.createCall) {
    console.error('[thinnest] widget.js needs the SDK: load /widget.js from the voice server.');
    return;
  }
  if (api.Widget) return; // loaded twice

  var DEFAULTS = {
    position: 'bottom-right',
    theme: 'light',
    greeting: 'Talk to us',
    primaryColor: '#0066FF',
    autoOpen: false,
    context: {},
    fallbackPhone: '',
    requestMicrophoneEarly: false,
  };
  var POSITIONS = ['bottom-right', 'bottom-left'];
  var THEMES = ['light', 'dark'];
  var STATUS_TEXT = {
    idle: 'Ready to call',
    connecting: 'Connecting…',
    connected: 'Connected',
    listening: 'Listening…',
    agent_speaking: 'Agent is speaking…',
    reconnecting: 'Connection lost. Reconnecting…',
    ended: 'Call ended',
    // The server restarted (SIGTERM): the agent has said so; the visitor may call again.
    server_shutdown: 'The call ended because the service is restarting. Please call again in a minute.',
  };

  // What a visitor reads when a call cannot be made. The operator's detail ("Origin … is not
  // allowed for this key") is no use to them and tells strangers how the site is set up: it goes
  // to the console and to call:error only.
  var VISITOR_TEXT = {
    unavailable: "Voice calls aren't available right now.",
    busy: 'All our lines are busy. Please try again in a few minutes.',
    microphone_denied:
      'Your browser is blocking the microphone. To allow it, click the lock icon next to the web ' +
      "address (or open this site's settings in your browser), allow the microphone, then try again.",
    microphone_unavailable:
      'No microphone could be used. Check that one is connected and not in use by another app, ' +
      'then try again.',
    unsupported_browser:
      "This browser can't make voice calls. Please try a recent Chrome, Firefox, Safari or Edge.",
    network: "We couldn't connect the call. Check your internet connection and try again.",
    connection_lost: 'The call was cut off. Please try again.',
    failed: 'Sorry, something went wrong and the call ended.',
  };
  var BUSY_CODES = ['at_capacity', 'rate_limited', 'concurrent_call_limit', 'http_429'];
  // Failures on the way between the visitor and the server, which their network may cause.
  var CONNECT_CODES = ['network', 'webrtc_failed', 'connect_timeout', 'answer_timeout', 'media_failed'];

  function visitorText(code, started) {
    if (code === 'microphone_denied' || code === 'microphone_unavailable' || code === 'connection_lost') {
      return VISITOR_TEXT[code];
    }
    if (code === 'unsupported_browser') {
      // On a plain-http page no browser can call: that is the site's to fix, not the visitor's.
      return global.isSecureContext === false ? VISITOR_TEXT.unavailable : VISITOR_TEXT.unsupported_browser;
    }
    if (BUSY_CODES.indexOf(code) >= 0) return VISITOR_TEXT.busy;
    if (started) return VISITOR_TEXT.failed;
    if (CONNECT_CODES.indexOf(code) >= 0) return VISITOR_TEXT.network;
    return VISITOR_TEXT.unavailable;
  }

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }

  // Page-wide events (ThinnestAI.on), for the script-tag integration.
  var events = new api.Emitter();
  api.on = function (event, callback) { events.on(event, callback); return api; };
  api.off = function (event, callback) { events.off(event, callback); return api; };

  /** The options, checked: a list of problems, and the options with defaults filled in. */
  function validate(options) {
    var problems = [];
    var o = {};
    Object.keys(DEFAULTS).forEach(function (k) { o[k] = DEFAULTS[k]; });
    Object.keys(options || {}).forEach(function (k) {
      if (options[k] !== undefined && options[k] !== null) o[k] = options[k];
    });
    if (typeof o.agentId !== 'string' || !o.agentId) problems.push('agentId is required (e.g. "agent_xyz").');
    if (typeof o.apiKey !== 'string' || !o.apiKey) {
      problems.push('apiKey is required: a public key (pk_...).');
    } else if (o.apiKey.indexOf('sk_') === 0) {
      // A secret key in a web page can start any call and create keys: refuse to use it.
      problems.push('apiKey is a secret key (sk_...): never put it in a web page; use a public key (pk_...).');
    }
    if (POSITIONS.indexOf(o.position) < 0) problems.push('position must be one of ' + POSITIONS.join(', ') + '.');
    if (THEMES.indexOf(o.theme) < 0) problems.push('theme must be one of ' + THEMES.join(', ') + '.');
    if (typeof o.primaryColor !== 'string' ||
        (global.CSS && CSS.supports && !CSS.supports('color', o.primaryColor))) {
      problems.push('primaryColor must be a CSS colour such as "#0066FF".');
    }
    if (typeof o.greeting !== 'string') problems.push('greeting must be a string.');
    if (typeof o.context !== 'object' || Array.isArray(o.context)) problems.push('context must be an object.');
    return { problems: problems, options: o };
  }

  var STYLE = [
    ':host { all: initial; }',
    '.root { position: fixed; bottom: 20px; z-index: 2147483000; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;',
    '  --bg: #fff; --fg: #1f2328; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa; color: var(--fg);',
    '  display: flex; flex-direction: column; gap: 12px; max-width: calc(100vw - 24px); }',
    '.root.dark { --bg: #161b22; --fg: #e6edf3; --muted: #9da7b3; --line: #30363d; --soft: #0d1117; }',
    '.root.bottom-right { right: 20px; align-items: flex-end; }',
    '.root.bottom-left { left: 20px; align-items: flex-start; }',
    // The floating button, and while a call runs its "End call" half: one pill.
    '.bar { display: flex; max-width: 100%; border-radius: 9999px; box-shadow: 0 4px 14px rgba(0,0,0,.25); }',
    '.launcher { display: inline-flex; align-items: center; gap: 8px; border: 0; border-radius: 9999px; min-width: 0;',
    '  padding: 12px 18px; background: var(--primary); color: #fff; font: inherit; font-weight: 600; cursor: pointer; }',
    '.bar.live .launcher { border-radius: 9999px 0 0 9999px; font-variant-numeric: tabular-nums; }',
    '.launcher .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }',
    '.launcher .icon { flex: none; display: flex; }',
    '.end { flex: none; border: 0; border-left: 1px solid rgba(255,255,255,.4); border-radius: 0 9999px 9999px 0;',
    '  padding: 12px 16px; background: #cf222e; color: #fff; font: inherit; font-weight: 600; cursor: pointer; white-space: nowrap; }',
    '.dot { flex: none; width: 10px; height: 10px; border-radius: 50%; background: #fff; animation: live 1.6s infinite; }',
    '@keyframes live { 0% { box-shadow: 0 0 0 0 rgba(255,255,255,.8); } 70%, 100% { box-shadow: 0 0 0 8px rgba(255,255,255,0); } }',
    '@media (prefers-reduced-motion: reduce) { .dot { animation: none; } }',
    '.end[hidden], .launcher .dot[hidden], .launcher .icon[hidden] { display: none; }',
    'button:focus-visible, a:focus-visible { outline: 3px solid var(--primary); outline-offset: 2px; }',
    '.launcher:focus-visible, .end:focus-visible { outline-color: var(--fg); }',
    '.panel { width: 340px; max-width: calc(100vw - 24px); box-sizing: border-box; background: var(--bg);',
    '  border: 1px solid var(--line); border-radius: 14px; box-shadow: 0 10px 30px rgba(0,0,0,.25);',
    '  padding: 14px; display: flex; flex-direction: column; gap: 10px; }',
    '.panel[hidden] { display: none; }',
    '.head { display: flex; align-items: center; justify-content: space-between; gap: 8px; }',
    '.title { font-weight: 600; margin: 0; font-size: 16px; }',
    '.close { border: 0; background: transparent; color: var(--muted); font-size: 22px; line-height: 1; cursor: pointer; padding: 2px 6px; }',
    '.status { margin: 0; color: var(--muted); min-height: 1.4em; }',
    '.status.live { color: #1a7f37; } .root.dark .status.live { color: #3fb950; }',
    '.status.error { color: #cf222e; } .root.dark .status.error { color: #f85149; }',
    '.transcript { background: var(--soft); border-radius: 8px; padding: 8px 10px; max-height: 220px;',
    '  min-height: 48px; overflow-y: auto; font-size: 14px; overflow-wrap: anywhere; }',
    '.transcript:empty { display: none; }',
    '.transcript p { margin: 4px 0; } .transcript .agent b { color: var(--primary); }',
    '.transcript .partial { opacity: .6; }',
    '.actions { display: flex; gap: 8px; flex-wrap: wrap; }',
    '.actions button { flex: 1; border: 0; border-radius: 9999px; padding: 10px 14px; font: inherit; font-weight: 600; cursor: pointer; }',
    '.call { background: var(--primary); color: #fff; }',
    '.hangup { background: #cf222e; color: #fff; }',
    '.mute { background: var(--soft); color: var(--fg); border: 1px solid var(--line) !important; }',
    '.mute[aria-pressed="true"] { background: var(--fg); color: var(--bg); }',
    '.actions button[hidden], .fallback[hidden] { display: none; }',
    '.fallback { margin: 0; font-size: 14px; color: var(--muted); } .fallback a { color: var(--primary); }',
    '@media (max-width: 420px) { .root.bottom-right, .root.bottom-left { left: 12px; right: 12px; bottom: 12px; }',
    '  .panel { width: 100%; } }',
  ].join('\n');

  var MIC_ICON = '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" fill="currentColor">' +
    '<path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 1 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11h-2z"/></svg>';

  var nextId = 1;

  /**
   * One widget on the page. `ThinnestAI.init` makes the page's widget; the React component
   * makes its own. Callbacks in options (onCallStart, onCallEnd, onError, onTranscript,
   * onTranscriptPartial) are called besides the page-wide events.
   */
  function Widget(options) {
    api.Emitter.call(this);
    var checked = validate(options);
    this.options = checked.options;
    this.call = null;
    this.state = 'idle';
    this.transcript = [];
    this._active = false; // from the click that starts a call until that call is over
    this._pending = null;
    this._lines = {}; // utteranceId -> the live (partial) line of that utterance
    this._clock = null;
    this._problem = null;
    this._id = 'thinnest-' + nextId++;
    this._render();
    if (checked.problems.length) {
      this._configError(checked.problems);
      return;
    }
    var reason = api.unsupportedReason();
    if (reason) {
      this._showStatus(visitorText('unsupported_browser'), 'error');
      this._showFallback(true);
    }
    if (this.options.requestMicrophoneEarly && !reason) {
      api.requestMicrophone().catch(function () { /* asked again, with a message, on call */ });
    }
    if (this.options.autoOpen) this.open();
  }
  Widget.prototype = Object.create(api.Emitter.prototype);
  Widget.prototype.constructor = Widget;

  Widget.prototype._emit = function (event, data, callbackName, args) {
    this.emit(event, data);
    if (this === api.widget) events.emit(event, data);
    var callback = this.options[callbackName];
    if (typeof callback === 'function') {
      try { callback.apply(null, args); } catch (err) { console.error('[thinnest] ' + callbackName + ' failed:', err); }
    }
  };

  /**
   * A call that could not be made or went wrong: the detail for the operator (console and
   * call:error), and, unless `quiet` (a later error of the same call: the panel keeps the first,
   * the cause), plain words for the visitor in the panel.
   */
  Widget.prototype._reportError = function (code, detail, started, quiet) {
    console.error('[thinnest] call failed (' + code + '): ' + detail);
    if (!quiet) {
      this._showStatus(visitorText(code, started), 'error');
      this._showFallback(true);
    }
    var payload = { error: detail, code: code };
    this._emit('call:error', payload, 'onError', [payload]);
  };

  Widget.prototype._configError = function (problems) {
    var message = 'ThinnestAI widget configuration: ' + problems.join(' ');
    console.error('[thinnest] ' + message);
    this._problem = message;
    this.els.call.disabled = true;
    this._showStatus(VISITOR_TEXT.unavailable, 'error');
    this._showFallback(true);
    // After the page had a chance to subscribe: the documentation calls init() and on() in
    // separate script tags, and the parser may run a timer between two of them, so while the
    // page is still loading wait for DOMContentLoaded (every inline script has run by then).
    var self = this;
    var emit = function () {
      setTimeout(function () {
        self._emit('call:error', { error: message, code: 'invalid_config' }, 'onError', [{ error: message, code: 'invalid_config' }]);
      }, 0);
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', emit, { once: true });
    else emit();
  };

  Widget.prototype._render = function () {
    var o = this.options;
    var host = document.createElement('div');
    host.setAttribute('data-thinnest-widget', '');
    var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
    var panelId = this._id + '-panel';
    var color = typeof o.primaryColor === 'string' ? o.primaryColor : DEFAULTS.primaryColor;
    root.innerHTML =
      '<style>' + STYLE + '</style>' +
      '<div class="root" part="root">' +
      '  <section class="panel" id="' + panelId + '" role="dialog" aria-label="Voice call" hidden>' +
      '    <div class="head"><p class="title"></p>' +
      '      <button type="button" class="close" aria-label="Close the call panel">×</button></div>' +
      '    <p class="status" role="status" aria-live="polite"></p>' +
      '    <div class="transcript" role="log" aria-live="polite" aria-label="Live transcript"></div>' +
      '    <p class="fallback" hidden></p>' +
      '    <div class="actions">' +
      '      <button type="button" class="call">Start call</button>' +
      '      <button type="button" class="mute" aria-pressed="false" hidden>Mute</button>' +
      '      <button type="button" class="hangup" hidden>End call</button>' +
      '    </div>' +
      '  </section>' +
      '  <div class="bar">' +
      '    <button type="button" class="launcher" aria-expanded="false" aria-controls="' + panelId + '">' +
      '<span class="icon">' + MIC_ICON + '</span><span class="dot" hidden></span><span class="label"></span></button>' +
      '    <button type="button" class="end" hidden>End call</button>' +
      '  </div>' +
      '</div>';
    var q = function (sel) { return root.querySelector(sel); };
    this.host = host;
    this.els = {
      root: q('.root'), panel: q('.panel'), title: q('.title'), close: q('.close'),
      status: q('.status'), transcript: q('.transcript'), fallback: q('.fallback'),
      call: q('.call'), mute: q('.mute'), hangup: q('.hangup'),
      bar: q('.bar'), launcher: q('.launcher'), icon: q('.icon'), dot: q('.dot'),
      label: q('.label'), end: q('.end'),
    };
    var position = POSITIONS.indexOf(o.position) >= 0 ? o.position : DEFAULTS.position;
    var theme = THEMES.indexOf(o.theme) >= 0 ? o.theme : DEFAULTS.theme;
    this.els.root.className = 'root ' + position + ' ' + theme;
    this.els.root.style.setProperty('--primary', color);
    this._greeting = typeof o.greeting === 'string' && o.greeting ? o.greeting : DEFAULTS.greeting;
    this.els.title.textContent = this._greeting;
    this._showLauncher();
    this._showStatus(STATUS_TEXT.idle);

    var self = this;
    this.els.launcher.addEventListener('click', function () {
      // Idle, the click starts the call, and within this click's gesture: that is what lets the
      // browser play the agent's audio and ask for the microphone. During a call it shows or
      // hides the panel.
      if (self._active) self.toggle(); else self.startCall();
    });
    var hangUp = function () {
      self.endCall();
      self.els.launcher.focus(); // the button that had focus is about to be hidden
    };
    this.els.end.addEventListener('click', hangUp);
    this.els.hangup.addEventListener('click', hangUp);
    this.els.close.addEventListener('click', function () { self.close(); self.els.launcher.focus(); });
    this.els.call.addEventListener('click', function () { self.startCall(); });
    this.els.mute.addEventListener('click', function () {
      if (self.call) self._setMuted(!self.call.muted);
    });
    this.els.root.addEventListener('keydown', function (event) {
      if (event.key === 'Escape' && !self.els.panel.hidden) { self.close(); self.els.launcher.focus(); }
    });
    if (document.body) {
      document.body.appendChild(host);
    } else {
      // The script tag may sit in <head>: attach once there is a body.
      document.addEventListener('DOMContentLoaded', function () { document.body.appendChild(host); });
    }
  };

  Widget.prototype._showStatus = function (text, kind) {
    this.els.status.textContent = text;
    this.els.status.className = 'status' + (kind ? ' ' + kind : '');
  };

  /** The floating button: the greeting when idle; while a call runs, that it runs and for how long. */
  Widget.prototype._showLauncher = function () {
    var els = this.els;
    var call = this.call;
    var label;
    if (!this._active) {
      label = this._greeting;
    } else if (!call || !call._startedAt) {
      label = 'Connecting…';
    } else if (call.status === 'reconnecting') {
      label = 'Reconnecting…';
    } else {
      label = 'On call ' + clock((Date.now() - call._startedAt) / 1000);
    }
    els.label.textContent = label;
    els.launcher.setAttribute('aria-label', this._active ? 'Voice call in progress' : this._greeting + ' (voice call)');
  };

  Widget.prototype._showFallback = function (show) {
    var phone = this.options.fallbackPhone;
    if (!show || !phone) { this.els.fallback.hidden = true; return; }
    this.els.fallback.textContent = 'You can also call us: ';
    var link = document.createElement('a');
    link.href = 'tel:' + String(phone).replace(/[^+\d]/g, '');
    link.textContent = phone;
    this.els.fallback.appendChild(link);
    this.els.fallback.hidden = false;
  };

  Widget.prototype._setInCall = function (inCall) {
    var els = this.els;
    els.call.hidden = inCall;
    els.hangup.hidden = !inCall;
    els.mute.hidden = !inCall;
    els.bar.classList.toggle('live', inCall);
    els.end.hidden = !inCall;
    els.dot.hidden = !inCall;
    els.icon.hidden = inCall;
    var self = this;
    if (inCall && !this._clock) {
      this._clock = setInterval(function () { self._showLauncher(); }, 1000);
    } else if (!inCall && this._clock) {
      clearInterval(this._clock);
      this._clock = null;
    }
    this._showLauncher();
  };

  Widget.prototype._setMuted = function (muted) {
    this.call.mute(muted);
    this.els.mute.setAttribute('aria-pressed', muted ? 'true' : 'false');
    this.els.mute.textContent = muted ? 'Unmute' : 'Mute';
  };

  /** One line per utterance: its partials update it in place (dimmed), its final settles it. */
  Widget.prototype._showLine = function (data, final) {
    var el = this.els.transcript;
    var p = this._lines[data.utteranceId];
    if (final) delete this._lines[data.utteranceId];
    if (!data.text) {
      // An empty partial takes the live line away (a reply cut off before any of it was heard).
      if (p) p.remove();
      return;
    }
    if (!p) {
      p = document.createElement('p');
      el.appendChild(p);
    }
    if (!final) this._lines[data.utteranceId] = p;
    p.className = data.role + (final ? '' : ' partial');
    // Screen readers hear the settled line, not each word of it as it comes.
    if (final) p.removeAttribute('aria-hidden'); else p.setAttribute('aria-hidden', 'true');
    var who = document.createElement('b');
    who.textContent = data.role === 'agent' ? 'Agent: ' : 'You: ';
    p.textContent = '';
    p.appendChild(who);
    p.appendChild(document.createTextNode(data.text));
    el.scrollTop = el.scrollHeight;
  };

  Widget.prototype.open = function () {
    this.els.panel.hidden = false;
    this.els.launcher.setAttribute('aria-expanded', 'true');
  };

  Widget.prototype.close = function () {
    this.els.panel.hidden = true;
    this.els.launcher.setAttribute('aria-expanded', 'false');
  };

  Widget.prototype.toggle = function () {
    if (this.els.panel.hidden) this.open(); else this.close();
  };

  /**
   * Open the panel and start a call (the launcher's click, the panel's "Start call"). Must run
   * from a click for mobile audio. Resolves to the call once it is live, or null.
   */
  Widget.prototype.startCall = function () {
    var self = this;
    var o = this.options;
    this.open();
    if (this._problem) return Promise.resolve(null);
    if (this._active) return this._pending;
    this._active = true;
    this._hangUpFirst = false;
    this.call = null;
    this.transcript = [];
    this._lines = {};
    this.els.transcript.textContent = '';
    this._showFallback(false);
    this._setInCall(true);
    this._showStatus(STATUS_TEXT.connecting);
    var failed = null;
    var call = null;
    var over = function (callButtonText) {
      self._active = false;
      self._setInCall(false);
      self.els.call.textContent = callButtonText;
      self.els.mute.setAttribute('aria-pressed', 'false');
      self.els.mute.textContent = 'Mute';
    };
    this._pending = api.createCall({
      agentId: o.agentId, apiKey: o.apiKey, context: o.context, serverUrl: o.serverUrl,
    }).then(function (created) {
      call = self.call = created;
      call.on('status', function (data) {
        self.state = data.status;
        if (STATUS_TEXT[data.status] && data.status !== 'ended' && !failed) {
          self._showStatus(STATUS_TEXT[data.status], data.status === 'reconnecting' ? '' : 'live');
        }
        self._showLauncher();
      });
      call.on('connected', function (data) {
        self._showLauncher();
        self._emit('call:start', { sessionId: data.sessionId }, 'onCallStart', [data.sessionId]);
      });
      call.on('transcript', function (data) {
        self._showLine(data, true);
        if (data.text) self.transcript.push({ role: data.role, text: data.text });
        var payload = { role: data.role, text: data.text, final: true, utteranceId: data.utteranceId };
        self._emit('transcript', payload, 'onTranscript', [payload]);
      });
      call.on('transcript_partial', function (data) {
        self._showLine(data, false);
        var payload = { role: data.role, text: data.text, utteranceId: data.utteranceId };
        self._emit('transcript_partial', payload, 'onTranscriptPartial', [payload]);
      });
      call.on('error', function (data) {
        self._reportError(data.code || 'error', data.message, !!call._startedAt, !!failed);
        failed = failed || data;
      });
      call.on('ended', function (data) {
        over(failed ? 'Try again' : 'Call again');
        if (failed) {
          self.open(); // a call that failed with the panel closed still says why
        } else if (data.reason === 'server_shutdown') {
          self._showStatus(STATUS_TEXT.server_shutdown);
          self._showFallback(true);
        } else {
          self._showStatus(STATUS_TEXT.ended + ' (' + Math.round(data.duration) + ' s)');
        }
        if (call._startedAt) {
          self._emit('call:end', { sessionId: data.sessionId, duration: data.duration }, 'onCallEnd', [data.sessionId, data.duration]);
        }
      });
      if (self._hangUpFirst) { // "End call" came before the call object did
        call.disconnect();
        return null;
      }
      return call.connect().then(function () { return call; });
    }).catch(function (error) {
      if (error.code === 'cancelled') return null; // hung up while connecting: 'ended' said so
      // connect() has emitted 'error' already, unless createCall itself refused.
      if (!failed) {
        failed = error;
        self._reportError(error.code || 'error', error.message || String(error), false);
      }
      over('Try again');
      self.open();
      self.state = 'error';
      return null;
    });
    return this._pending;
  };

  Widget.prototype.endCall = function () {
    if (this._active && !this.call) this._hangUpFirst = true;
    return this.call ? this.call.disconnect() : Promise.resolve();
  };

  Widget.prototype.destroy = function () {
    if (this.call) this.call.disconnect();
    if (this._clock) clearInterval(this._clock);
    this._clock = null;
    if (this.host && this.host.parentNode) this.host.parentNode.removeChild(this.host);
    if (api.widget === this) api.widget = null;
  };

  api.Widget = Widget;
  api.validateOptions = validate;

  /** The script-tag integration: one widget per page (a second init replaces the first). */
  api.init = function (options) {
    try {
      if (api.widget) api.widget.destroy();
      var widget = Object.create(Widget.prototype);
      api.widget = widget; // before construction: its configuration errors are page events
      Widget.call(widget, options);
      return widget;
    } catch (err) {
      // Whatever happens, the host page goes on.
      console.error('[thinnest] the widget could not start:', err);
      events.emit('call:error', { error: String(err && err.message || err), code: 'widget_failed' });
      return null;
    }
  };
  api.open = function () { if (api.widget) api.widget.open(); };
  api.close = function () { if (api.widget) api.widget.close(); };
  api.startCall = function () { return api.widget ? api.widget.startCall() : Promise.resolve(null); };
  api.endCall = function () { return api.widget ? api.widget.endCall() : Promise.resolve(); };
  api.destroy = function () { if (api.widget) api.widget.destroy(); };
})(typeof window !== 'undefined' ? window : globalThis);
