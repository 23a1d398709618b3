/*! thinnest embed widget. Served at /widget.js after the SDK (static/embed/sdk.js): it is built on
 * ThinnestAI.createCall, not beside it.
 *
 *   ThinnestAI.init({ agentId, apiKey, position, theme, greeting, primaryColor, autoOpen, context,
 *                     serverUrl, fallbackPhone, requestMicrophoneEarly });
 *   ThinnestAI.on('call:start' | 'call:end' | 'call:error' | 'transcript', callback);
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
  };

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
    '.launcher { display: inline-flex; align-items: center; gap: 8px; border: 0; border-radius: 9999px;',
    '  padding: 12px 18px; background: var(--primary); color: #fff; font: inherit; font-weight: 600; cursor: pointer;',
    '  box-shadow: 0 4px 14px rgba(0,0,0,.25); max-width: 100%; }',
    '.launcher span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }',
    '.launcher svg { flex: none; }',
    'button:focus-visible, a:focus-visible { outline: 3px solid var(--primary); outline-offset: 2px; }',
    '.launcher:focus-visible { outline-color: var(--fg); }',
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
   * makes its own. Callbacks in options (onCallStart, onCallEnd, onError, onTranscript) are
   * called besides the page-wide events.
   */
  function Widget(options) {
    api.Emitter.call(this);
    var checked = validate(options);
    this.options = checked.options;
    this.call = null;
    this.state = 'idle';
    this.transcript = [];
    this._id = 'thinnest-' + nextId++;
    this._render();
    if (checked.problems.length) {
      this._configError(checked.problems);
      return;
    }
    var reason = api.unsupportedReason();
    if (reason) {
      this._showStatus(api.messages.unsupported_browser, 'error');
      this._showFallback(true);
      this.els.call.disabled = true;
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

  Widget.prototype._configError = function (problems) {
    var message = 'ThinnestAI widget configuration: ' + problems.join(' ');
    console.error('[thinnest] ' + message);
    this.els.call.disabled = true;
    this._showStatus(message, 'error');
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
      '  <button type="button" class="launcher" aria-expanded="false" aria-controls="' + panelId + '">' +
      MIC_ICON + '<span></span></button>' +
      '</div>';
    var q = function (sel) { return root.querySelector(sel); };
    this.host = host;
    this.els = {
      root: q('.root'), panel: q('.panel'), title: q('.title'), close: q('.close'),
      status: q('.status'), transcript: q('.transcript'), fallback: q('.fallback'),
      call: q('.call'), mute: q('.mute'), hangup: q('.hangup'), launcher: q('.launcher'),
    };
    var position = POSITIONS.indexOf(o.position) >= 0 ? o.position : DEFAULTS.position;
    var theme = THEMES.indexOf(o.theme) >= 0 ? o.theme : DEFAULTS.theme;
    this.els.root.className = 'root ' + position + ' ' + theme;
    this.els.root.style.setProperty('--primary', color);
    var greeting = typeof o.greeting === 'string' && o.greeting ? o.greeting : DEFAULTS.greeting;
    this.els.launcher.querySelector('span').textContent = greeting;
    this.els.launcher.setAttribute('aria-label', greeting + ' (voice call)');
    this.els.title.textContent = greeting;
    this._showStatus(STATUS_TEXT.idle);

    var self = this;
    this.els.launcher.addEventListener('click', function () { self.toggle(); });
    this.els.close.addEventListener('click', function () { self.close(); self.els.launcher.focus(); });
    this.els.call.addEventListener('click', function () { self.startCall(); });
    this.els.hangup.addEventListener('click', function () { self.endCall(); });
    this.els.mute.addEventListener('click', function () {
      if (self.call) self._setMuted(!self.call.muted);
    });
    this.els.panel.addEventListener('keydown', function (event) {
      if (event.key === 'Escape') { self.close(); self.els.launcher.focus(); }
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

  Widget.prototype._showFallback = function (show) {
    var phone = this.options.fallbackPhone;
    if (!show || !phone) { this.els.fallback.hidden = true; return; }
    this.els.fallback.textContent = 'Prefer the phone? Call ';
    var link = document.createElement('a');
    link.href = 'tel:' + String(phone).replace(/[^+\d]/g, '');
    link.textContent = phone;
    this.els.fallback.appendChild(link);
    this.els.fallback.hidden = false;
  };

  Widget.prototype._setInCall = function (inCall) {
    this.els.call.hidden = inCall;
    this.els.hangup.hidden = !inCall;
    this.els.mute.hidden = !inCall;
  };

  Widget.prototype._setMuted = function (muted) {
    this.call.mute(muted);
    this.els.mute.setAttribute('aria-pressed', muted ? 'true' : 'false');
    this.els.mute.textContent = muted ? 'Unmute' : 'Mute';
  };

  Widget.prototype._appendTranscript = function (role, text, final) {
    var el = this.els.transcript;
    var p = el.querySelector('p.partial.' + role);
    if (!p) {
      p = document.createElement('p');
      p.className = role;
      el.appendChild(p);
    }
    p.textContent = '';
    var who = document.createElement('b');
    who.textContent = role === 'agent' ? 'Agent: ' : 'You: ';
    p.appendChild(who);
    p.appendChild(document.createTextNode(text));
    p.classList.toggle('partial', !final);
    el.scrollTop = el.scrollHeight;
  };

  Widget.prototype.open = function () {
    this.els.panel.hidden = false;
    this.els.launcher.setAttribute('aria-expanded', 'true');
    var target = this.els.call.hidden ? this.els.hangup : this.els.call;
    if (!target.disabled) target.focus();
  };

  Widget.prototype.close = function () {
    this.els.panel.hidden = true;
    this.els.launcher.setAttribute('aria-expanded', 'false');
  };

  Widget.prototype.toggle = function () {
    if (this.els.panel.hidden) this.open(); else this.close();
  };

  /** Start a call (the panel's "Start call"). Must run from a click for mobile audio. */
  Widget.prototype.startCall = function () {
    var self = this;
    var o = this.options;
    if (this.call && !this.call._ended) return Promise.resolve(this.call);
    this.open();
    this.transcript = [];
    this.els.transcript.textContent = '';
    this._showFallback(false);
    this._setInCall(true);
    this._showStatus(STATUS_TEXT.connecting);
    var failed = null;
    return api.createCall({
      agentId: o.agentId, apiKey: o.apiKey, context: o.context, serverUrl: o.serverUrl,
    }).then(function (call) {
      self.call = call;
      call.on('status', function (data) {
        self.state = data.status;
        if (STATUS_TEXT[data.status] && data.status !== 'ended') {
          self._showStatus(STATUS_TEXT[data.status], data.status === 'reconnecting' ? '' : 'live');
        }
      });
      call.on('connected', function (data) {
        self._emit('call:start', { sessionId: data.sessionId }, 'onCallStart', [data.sessionId]);
      });
      call.on('transcript', function (data) {
        self._appendTranscript(data.role, data.text, data.final);
        if (data.final) self.transcript.push({ role: data.role, text: data.text });
        var payload = { role: data.role, text: data.text, final: data.final };
        self._emit('transcript', payload, 'onTranscript', [payload]);
      });
      call.on('error', function (data) {
        failed = data;
        self._showStatus(data.message, 'error');
        self._emit('call:error', { error: data.message, code: data.code }, 'onError', [{ error: data.message, code: data.code }]);
      });
      call.on('ended', function (data) {
        self._setInCall(false);
        if (!failed) self._showStatus(STATUS_TEXT.ended + ' (' + Math.round(data.duration) + ' s)');
        if (call._startedAt) {
          self._emit('call:end', { sessionId: data.sessionId, duration: data.duration }, 'onCallEnd', [data.sessionId, data.duration]);
        }
      });
      return call.connect().then(function () { return call; });
    }).catch(function (error) {
      // connect() has emitted 'error' already, unless createCall itself refused.
      if (!failed) {
        var message = error.message || String(error);
        self._showStatus(message, 'error');
        self._emit('call:error', { error: message, code: error.code }, 'onError', [{ error: message, code: error.code }]);
      }
      self._setInCall(false);
      self._showFallback(true);
      self.state = 'error';
      return null;
    });
  };

  Widget.prototype.endCall = function () {
    return this.call ? this.call.disconnect() : Promise.resolve();
  };

  Widget.prototype.destroy = function () {
    if (this.call) this.call.disconnect();
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
