/*! thinnest voice SDK. Served at /sdk.js (and inside /widget.js): plain JavaScript, no build.
 *
 *   const call = await ThinnestAI.createCall({ agentId, apiKey, context });
 *   // or, with the call started by your backend: createCall({ startSession: () => fetch(...) })
 *   call.on('connected' | 'transcript' | 'transcript_partial' | 'agent_speaking' |
 *           'agent_listening' | 'ended' | 'error' | 'reconnecting' | 'reconnected' | 'status',
 *           callback);
 *   await call.connect();  call.mute(true);  call.disconnect();
 *
 * 'transcript' fires once per utterance, final ({role, text, final: true, utteranceId}), so a
 * page may append a line for each (the documentation's code does). 'transcript_partial'
 * ({role, text, utteranceId}) is the utterance so far, to show live: it replaces the previous
 * partial with the same utteranceId, an empty text takes that line away, and the utterance's
 * 'transcript' replaces it.
 *
 * The server defaults to the origin this script was loaded from; `serverUrl` overrides it.
 */
(function (global) {
  'use strict';

  var VERSION = '1.0.0';
  var existing = global.ThinnestAI;
  if (existing && existing.createCall) return; // sdk.js and widget.js both on one page

  // Where this script came from, read while it runs (currentScript is gone afterwards).
  var scriptOrigin = (function () {
    try {
      var src = document.currentScript && document.currentScript.src;
      if (src) return new URL(src, global.location.href).origin;
    } catch (e) { /* fall through */ }
    return global.location ? global.location.origin : '';
  })();

  var MESSAGES = {
    microphone_denied: 'Please allow microphone access to start the call.',
    microphone_unavailable: 'Could not access microphone. Please check your device settings.',
    unsupported_browser:
      'Voice calls need a browser with WebRTC and microphone support (Chrome 56+, Firefox 44+, ' +
      'Safari 11+, Edge 79+), on a secure (https) page.',
    network: 'Could not reach the voice server. Please check your connection and try again.',
    connection_lost: 'The connection to the call was lost.',
  };

  function callError(code, message, cause) {
    var error = new Error(message || MESSAGES[code] || code);
    error.code = code;
    if (cause) error.cause = cause;
    return error;
  }

  /** What the browser lacks for a call, or null when it can make one. */
  function unsupportedReason() {
    if (typeof global.RTCPeerConnection !== 'function') return 'RTCPeerConnection is missing';
    if (typeof global.WebSocket !== 'function') return 'WebSocket is missing';
    if (!global.navigator || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return global.isSecureContext === false
        ? 'the page is not served over https'
        : 'navigator.mediaDevices.getUserMedia is missing';
    }
    return null;
  }

  function isSupported() {
    return unsupportedReason() === null;
  }

  function microphoneError(err) {
    var name = err && err.name;
    if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError') {
      return callError('microphone_denied', null, err);
    }
    return callError('microphone_unavailable', null, err);
  }

  // Echo cancellation on: the agent must not hear (and answer) itself on speakers.
  var AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  var earlyMicrophone = null;

  /** Ask for the microphone now (best practice: before the call), keeping it for the next call. */
  function requestMicrophone() {
    if (!isSupported()) return Promise.reject(callError('unsupported_browser'));
    if (earlyMicrophone && earlyMicrophone.getAudioTracks().some(isLive)) {
      return Promise.resolve(earlyMicrophone);
    }
    return navigator.mediaDevices.getUserMedia({ audio: AUDIO_CONSTRAINTS }).then(
      function (stream) { earlyMicrophone = stream; return stream; },
      function (err) { throw microphoneError(err); }
    );
  }

  function isLive(track) {
    return track.readyState === 'live';
  }

  function takeMicrophone() {
    var stream = earlyMicrophone;
    earlyMicrophone = null;
    if (stream && stream.getAudioTracks().some(isLive)) return Promise.resolve(stream);
    return requestMicrophone().then(function (fresh) { earlyMicrophone = null; return fresh; });
  }

  function Emitter() {
    this._handlers = {};
  }
  Emitter.prototype.on = function (event, callback) {
    (this._handlers[event] = this._handlers[event] || []).push(callback);
    return this;
  };
  Emitter.prototype.off = function (event, callback) {
    var list = this._handlers[event] || [];
    this._handlers[event] = callback ? list.filter(function (h) { return h !== callback; }) : [];
    return this;
  };
  Emitter.prototype.emit = function (event, data) {
    (this._handlers[event] || []).slice().forEach(function (handler) {
      try {
        handler(data);
      } catch (err) {
        // A broken handler on the host page must not break the call.
        console.error('[thinnest] a "' + event + '" handler failed:', err);
      }
    });
  };

  var STATUSES = ['idle', 'connecting', 'connected', 'agent_speaking', 'listening',
    'reconnecting', 'ended', 'error'];

  /**
   * One call. Created by ThinnestAI.createCall; `connect()` starts it.
   * Options: agentId, apiKey (a public key), context, serverUrl, reconnectTimeout (ms).
   */
  function CallSession(options) {
    Emitter.call(this);
    this.options = options;
    this.serverUrl = String(options.serverUrl || scriptOrigin).replace(/\/+$/, '');
    this.sessionId = null;
    this.status = 'idle';
    this.muted = false;
    this.duration = 0;
    this._ws = null;
    this._pc = null;
    this._stream = null;
    this._resumeToken = null;
    this._ended = false;
    this._startedAt = 0;
    this._lastError = null;
    // Mobile browsers play audio only from a user gesture: createCall runs in the click
    // handler, so the element is made and started here, and gets the agent's stream later.
    this._audio = this._unlockAudio();
  }
  CallSession.prototype = Object.create(Emitter.prototype);
  CallSession.prototype.constructor = CallSession;

  CallSession.prototype._unlockAudio = function () {
    if (typeof global.Audio !== 'function') return null;
    var audio = new Audio();
    audio.autoplay = true;
    audio.setAttribute('playsinline', '');
    try {
      var played = audio.play();
      if (played && played.catch) played.catch(function () { /* no source yet: expected */ });
    } catch (e) { /* old browsers */ }
    return audio;
  };

  CallSession.prototype._setStatus = function (status) {
    if (this.status === status) return;
    this.status = status;
    this.emit('status', { status: status });
  };

  CallSession.prototype._fail = function (error) {
    if (this._ended) return;
    this._lastError = error;
    this._setStatus('error');
    this.emit('error', { code: error.code, message: error.message, error: error });
  };

  /** Start the call: microphone, session, WebSocket, WebRTC. Resolves once the call is live. */
  CallSession.prototype.connect = function () {
    var self = this;
    if (this._connecting) return this._connecting;
    var reason = unsupportedReason();
    if (reason) {
      var unsupported = callError('unsupported_browser', MESSAGES.unsupported_browser + ' (' + reason + ')');
      this._fail(unsupported);
      return Promise.reject(unsupported);
    }
    this._setStatus('connecting');
    liveCalls.push(this);
    // The microphone first: no session is spent when permission is refused, and the first
    // words are not clipped by a microphone that starts late.
    this._connecting = takeMicrophone()
      .then(function (stream) {
        self._stream = stream;
        self._stopIfHungUp();
        stream.getAudioTracks().forEach(function (t) { t.enabled = !self.muted; });
        return self._startSession();
      })
      .then(function (session) {
        self._stopIfHungUp();
        self.sessionId = session.session_id;
        self._iceServers = session.ice_servers || [];
        return self._open(session.websocket_url, { type: 'auth', token: session.token });
      })
      .catch(function (error) {
        if (!error.code) error = callError('network', null, error);
        if (error.code === 'cancelled') self._finish(null, 'user_hangup');
        else self._fail(error);
        self._release();
        throw error;
      });
    return this._connecting;
  };

  /** disconnect() while connecting (the permission prompt, /voice/start) ends the call there:
   * nothing after it may take the microphone live again or open the call's socket. */
  CallSession.prototype._stopIfHungUp = function () {
    if (this._ended) throw callError('cancelled', 'The call was hung up before it connected.');
  };

  /** Why a call ended before call_started: the caller's hang-up is no error. */
  CallSession.prototype._notStarted = function (fallback) {
    if (this._hungUp) return callError('cancelled', 'The call was hung up before it connected.');
    return this._lastError || fallback;
  };

  CallSession.prototype._startSession = function () {
    var o = this.options;
    if (typeof o.startSession === 'function') {
      // Your backend starts the call with its secret key (the documentation's Step 1) and
      // returns {session_id, token, websocket_url}: no key in the page at all.
      return Promise.resolve(o.startSession()).then(function (session) {
        if (!session || !session.token || !session.websocket_url) {
          throw callError('invalid_session', 'startSession must resolve to {session_id, token, websocket_url}.');
        }
        return session;
      });
    }
    return fetch(this.serverUrl + '/voice/start', {
      method: 'POST',
      mode: 'cors',
      credentials: 'omit',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + o.apiKey },
      body: JSON.stringify({ agent_id: o.agentId, context: o.context || {} }),
    }).then(
      function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (response.ok) return body;
          var e = body && body.error ? body.error : {};
          throw callError(e.code || 'http_' + response.status,
            e.message || 'The voice server answered ' + response.status + '.');
        });
      },
      function (err) { throw callError('network', null, err); }
    );
  };

  /** One socket + one peer connection; resolves on call_started. Used again to resume. */
  CallSession.prototype._open = function (websocketUrl, hello) {
    var self = this;
    this._websocketUrl = websocketUrl;
    return new Promise(function (resolve, reject) {
      var ws = new WebSocket(websocketUrl);
      var pc = new RTCPeerConnection({ iceServers: self._iceServers || [] });
      var settled = false;
      self._ws = ws;
      self._pc = pc;
      self._stream.getTracks().forEach(function (track) { pc.addTrack(track, self._stream); });

      pc.ontrack = function (event) {
        if (!self._audio) self._audio = new Audio();
        self._audio.srcObject = event.streams[0];
        var played = self._audio.play();
        if (played && played.catch) {
          played.catch(function (err) { console.warn('[thinnest] agent audio blocked:', err); });
        }
      };
      pc.onicecandidate = function (event) {
        if (event.candidate && ws.readyState === WebSocket.OPEN) {
          ws.send(JSON.stringify({ type: 'ice-candidate', candidate: event.candidate }));
        }
      };
      pc.oniceconnectionstatechange = function () {
        // 'disconnected' often heals by itself; 'failed' does not.
        if (pc === self._pc && pc.iceConnectionState === 'failed') self._lost();
      };
      ws.onopen = function () { ws.send(JSON.stringify(hello)); };
      ws.onmessage = function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        self._onMessage(message, pc, ws);
        if (message.type === 'call_started' && !settled) { settled = true; resolve(self); }
        if (message.type === 'call_ended' && !settled) {
          settled = true;
          reject(self._notStarted(callError('call_ended', 'The call ended before it started.')));
        }
      };
      ws.onclose = function () {
        if (ws !== self._ws) return;
        if (!settled) {
          settled = true;
          reject(self._notStarted(callError('network')));
          return;
        }
        self._lost();
      };
    });
  };

  CallSession.prototype._onMessage = function (message, pc, ws) {
    var self = this;
    switch (message.type) {
      case 'offer':
        if (pc.signalingState !== 'stable' || pc.remoteDescription) return; // a re-sent offer
        pc.setRemoteDescription(message.sdp)
          .then(function () { return pc.createAnswer(); })
          .then(function (answer) { return pc.setLocalDescription(answer).then(function () { return answer; }); })
          .then(function (answer) {
            ws.send(JSON.stringify({ type: 'answer', sdp: { type: answer.type, sdp: answer.sdp } }));
          })
          .catch(function (err) { self._fail(callError('webrtc_failed', 'WebRTC setup failed: ' + err.message, err)); });
        break;
      case 'ice-candidate':
        if (message.candidate) pc.addIceCandidate(message.candidate).catch(function () {});
        break;
      case 'call_started':
        this._resumeToken = message.resume_token || null;
        if (!this._startedAt) this._startedAt = Date.now();
        this._setStatus('connected');
        if (message.resumed) {
          this.emit('reconnected', { sessionId: this.sessionId });
        } else {
          this.emit('connected', { sessionId: this.sessionId });
        }
        break;
      case 'agent_speaking':
        this._setStatus('agent_speaking');
        this.emit('agent_speaking', {});
        break;
      case 'agent_listening':
        this._setStatus('listening');
        this.emit('agent_listening', {});
        break;
      case 'transcript':
        // An older server sends its partials as transcript with final: false: they are partials
        // here too, so that 'transcript' stays once per utterance.
        if (message.final === false) {
          this._partial(message);
        } else {
          this.emit('transcript', {
            role: message.role, text: message.text, final: true,
            utteranceId: message.utterance_id || this._localUtteranceId(message.role, true),
          });
        }
        break;
      case 'transcript_partial':
        this._partial(message);
        break;
      case 'error':
        this._lastError = callError(message.code || 'error', message.message);
        if (message.code === 'call_resumed_elsewhere') return;
        this.emit('error', { code: message.code, message: message.message, error: this._lastError });
        break;
      case 'call_ended':
        this._finish(message.duration, message.reason);
        break;
    }
  };

  CallSession.prototype._partial = function (message) {
    this.emit('transcript_partial', {
      role: message.role, text: message.text || '',
      utteranceId: message.utterance_id || this._localUtteranceId(message.role, false),
    });
  };

  /** An id for a server that sends none: its partials and final of one role come in turn. */
  CallSession.prototype._localUtteranceId = function (role, finished) {
    var ids = this._localIds || (this._localIds = { count: 0 });
    var id = ids[role] || (ids[role] = role + '-local-' + ++ids.count);
    if (finished) delete ids[role];
    return id;
  };

  /** The socket or the network dropped mid-call: resume the same call on a new connection. */
  CallSession.prototype._lost = function () {
    var self = this;
    if (this._ended || this._reconnecting) return;
    if (!this._resumeToken) {
      this._fail(callError('connection_lost'));
      this._finish(null, 'connection_lost');
      return;
    }
    this._reconnecting = true;
    this._setStatus('reconnecting');
    this.emit('reconnecting', { sessionId: this.sessionId });
    var deadline = Date.now() + (this.options.reconnectTimeout || 20000);
    var delay = 250;
    var attempt = function () {
      if (self._ended) return;
      self._closeTransport();
      self._open(self._websocketUrl.split('?')[0], { type: 'resume', token: self._resumeToken })
        .then(function () { self._reconnecting = false; })
        .catch(function (error) {
          var gone = error && (error.code === 'call_ended' || error.code === 'invalid_token' ||
            error.code === 'wrong_session');
          if (gone || Date.now() + delay > deadline) {
            self._reconnecting = false;
            self._fail(gone ? error : callError('connection_lost'));
            self._finish(null, 'connection_lost');
            return;
          }
          setTimeout(attempt, delay);
          delay = Math.min(delay * 2, 3000);
        });
    };
    attempt();
  };

  CallSession.prototype._finish = function (duration, reason) {
    if (this._ended) return;
    this._ended = true;
    var me = this;
    liveCalls = liveCalls.filter(function (c) { return c !== me; });
    this.duration = typeof duration === 'number' ? duration
      : this._startedAt ? (Date.now() - this._startedAt) / 1000 : 0;
    if (this.status !== 'error') this._setStatus('ended');
    this.emit('ended', { sessionId: this.sessionId, duration: this.duration, reason: reason || 'ended' });
    // The agent's last words may still be in the browser's jitter buffer: let them play.
    var self = this;
    setTimeout(function () { self._release(); }, 600);
  };

  CallSession.prototype._closeTransport = function () {
    var ws = this._ws, pc = this._pc;
    this._ws = this._pc = null;
    if (ws) { ws.onclose = ws.onmessage = null; try { ws.close(); } catch (e) {} }
    if (pc) { pc.oniceconnectionstatechange = null; try { pc.close(); } catch (e) {} }
  };

  CallSession.prototype._release = function () {
    this._closeTransport();
    if (this._stream) this._stream.getTracks().forEach(function (t) { t.stop(); });
    this._stream = null;
    if (this._audio) { this._audio.pause(); this._audio.srcObject = null; }
  };

  /** Hang up. The microphone goes quiet at once; resolves when the server has confirmed the
   * end, with the call's recorded duration (its media server records it once the last words
   * are in: usually well under a second), or after five seconds without an answer. */
  CallSession.prototype.disconnect = function () {
    var self = this;
    if (this._ended) return Promise.resolve();
    this._hungUp = true;
    var ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      // A socket still opening has a session behind it (its token is in the URL): say so once it
      // opens, or the server would hold the call for a resume that never comes.
      if (ws && ws.readyState === WebSocket.CONNECTING) {
        ws.onopen = function () { ws.send(JSON.stringify({ type: 'hangup' })); };
      }
      this._finish(null, 'user_hangup');
      return Promise.resolve();
    }
    if (this._stream) this._stream.getAudioTracks().forEach(function (t) { t.enabled = false; });
    return new Promise(function (resolve) {
      self.on('ended', function () { resolve(); });
      ws.send(JSON.stringify({ type: 'hangup' }));
      setTimeout(function () { self._finish(null, 'user_hangup'); resolve(); }, 5000);
    });
  };

  CallSession.prototype.mute = function (muted) {
    this.muted = muted !== false;
    if (this._stream) {
      var enabled = !this.muted;
      this._stream.getAudioTracks().forEach(function (t) { t.enabled = enabled; });
    }
    this.emit('mute', { muted: this.muted });
    return this.muted;
  };

  function createCall(options) {
    options = options || {};
    if (typeof options.startSession !== 'function') {
      var missing = ['agentId', 'apiKey'].filter(function (k) { return !options[k]; });
      if (missing.length) {
        return Promise.reject(callError('invalid_config',
          'ThinnestAI.createCall needs ' + missing.join(' and ') + ' (or a startSession function).'));
      }
    }
    // Synchronous up to here: the audio unlock in the constructor needs the click's gesture.
    return Promise.resolve(new CallSession(options));
  }

  // Closing the tab hangs up at once, rather than leaving the call to wait for a resume.
  var liveCalls = [];
  if (global.addEventListener) {
    global.addEventListener('pagehide', function () {
      liveCalls.forEach(function (call) {
        if (call._ws && call._ws.readyState === WebSocket.OPEN) call._ws.send('{"type":"hangup"}');
      });
    });
  }

  var api = existing || {};
  api.version = VERSION;
  api.serverUrl = scriptOrigin;
  api.createCall = createCall;
  api.CallSession = CallSession;
  api.Emitter = Emitter;
  api.isSupported = isSupported;
  api.unsupportedReason = unsupportedReason;
  api.requestMicrophone = requestMicrophone;
  api.messages = MESSAGES;
  api.STATUSES = STATUSES;
  global.ThinnestAI = api;
})(typeof window !== 'undefined' ? window : globalThis);
