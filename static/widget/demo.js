// The /demo/ page: the documentation's Step 2 browser code, run as written, plus the page's UI.

// ---- The seed's "Step 2: Connect from the Browser", unchanged but for the wrapping function
// (the seed uses top-level await) and the return at the end. ----
async function connectLikeTheSeed() {
  const response = await fetch('/api/start-call', { method: 'POST' });
  const { token, websocket_url } = await response.json();
  // Connect to the thinnestAI voice engine
  const ws = new WebSocket(websocket_url);
  // Set up WebRTC peer connection
  const peerConnection = new RTCPeerConnection();
  // Get user's microphone
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  stream.getTracks().forEach(track => {
    peerConnection.addTrack(track, stream);
  });
  // Handle incoming audio from the agent
  peerConnection.ontrack = (event) => {
    const audio = new Audio();
    audio.srcObject = event.streams[0];
    audio.play();
  };
  // Exchange WebRTC signaling via WebSocket
  ws.onmessage = async (event) => {
    const message = JSON.parse(event.data);
    if (message.type === 'offer') {
      await peerConnection.setRemoteDescription(message.sdp);
      const answer = await peerConnection.createAnswer();
      await peerConnection.setLocalDescription(answer);
      ws.send(JSON.stringify({ type: 'answer', sdp: answer }));
    }
    if (message.type === 'ice-candidate') {
      await peerConnection.addIceCandidate(message.candidate);
    }
  };
  // Send ICE candidates
  peerConnection.onicecandidate = (event) => {
    if (event.candidate) {
      ws.send(JSON.stringify({
        type: 'ice-candidate',
        candidate: event.candidate
      }));
    }
  };
  // Authenticate
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: 'auth', token }));
  };
  return { ws, peerConnection, stream };
}
// ---- end of the seed's code ----

(function () {
  const statusEl = document.getElementById('status');
  const callBtn = document.getElementById('callBtn');
  const hangupBtn = document.getElementById('hangupBtn');
  const transcriptEl = document.getElementById('transcript');
  // What happened, for people debugging the demo (and for the end-to-end test).
  const demo = (window.thinnestDemo = { events: [], call: null });
  let lastError = null;

  function setStatus(text, className) {
    statusEl.textContent = text;
    statusEl.className = 'status' + (className ? ' ' + className : '');
  }

  function showCallButton(inCall) {
    callBtn.hidden = inCall;
    hangupBtn.hidden = !inCall;
  }

  // One line per utterance: `transcript_partial` shows it live (each carries the whole text so
  // far; an empty one takes the line away), the utterance's one `transcript` makes it final.
  function showTranscript(message, final) {
    const id = message.utterance_id;
    let p = id ? transcriptEl.querySelector('p[data-utterance="' + CSS.escape(id) + '"]') : null;
    if (!final && !message.text) {
      if (p) p.remove();
      return;
    }
    if (!p) {
      p = document.createElement('p');
      p.className = message.role;
      if (id) p.dataset.utterance = id;
      transcriptEl.appendChild(p);
    }
    p.textContent = (message.role === 'agent' ? 'Agent' : 'You') + ': ' + message.text;
    p.classList.toggle('partial', !final);
    transcriptEl.scrollTop = transcriptEl.scrollHeight;
  }

  function cleanup() {
    const call = demo.call;
    if (!call) return;
    call.stream.getTracks().forEach((track) => track.stop());
    call.peerConnection.close();
    showCallButton(false);
  }

  function onServerMessage(event) {
    const message = JSON.parse(event.data);
    demo.events.push({ type: message.type, at: performance.now(), message });
    switch (message.type) {
      case 'call_started':
        setStatus('Connected', 'connected');
        break;
      case 'agent_speaking':
        setStatus('Agent is speaking…', 'connected');
        break;
      case 'agent_listening':
        setStatus('Listening…', 'connected');
        break;
      case 'transcript':
        showTranscript(message, true);
        break;
      case 'transcript_partial':
        showTranscript(message, false);
        break;
      case 'call_ended':
        // An error just before the end is the reason the user needs to see.
        if (lastError) {
          setStatus('Call ended: ' + lastError, 'error');
        } else {
          setStatus('Call ended (' + Math.round(message.duration) + ' s)', 'ended');
        }
        cleanup();
        break;
      case 'error':
        lastError = message.message;
        setStatus('Error: ' + message.message, 'error');
        break;
    }
  }

  async function startCall() {
    lastError = null;
    transcriptEl.textContent = '';
    setStatus('Connecting...');
    callBtn.hidden = true;
    try {
      demo.call = await connectLikeTheSeed();
    } catch (err) {
      if (err.name === 'NotAllowedError') {
        setStatus('Please allow microphone access to start the call.', 'error');
      } else if (err.name === 'NotFoundError') {
        setStatus('No microphone was found. Please connect one and try again.', 'error');
      } else {
        setStatus('Could not start the call: ' + err.message, 'error');
      }
      showCallButton(false);
      return;
    }
    showCallButton(true);
    demo.call.ws.addEventListener('message', onServerMessage);
    demo.call.ws.addEventListener('close', () => {
      if (!statusEl.classList.contains('ended') && !statusEl.classList.contains('error')) {
        setStatus('Disconnected', 'ended');
      }
      cleanup();
    });
  }

  function endCall() {
    const call = demo.call;
    if (call && call.ws.readyState === WebSocket.OPEN) {
      call.ws.send(JSON.stringify({ type: 'hangup' }));
    } else {
      cleanup();
    }
  }

  callBtn.addEventListener('click', startCall);
  hangupBtn.addEventListener('click', endCall);
})();
