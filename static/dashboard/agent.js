// The agent form: what this server has for the chosen engines, the voice preview, and "Talk to
// this agent" through the SDK.
(function () {
  const $ = (id) => document.getElementById(id);

  // --- the server's models and voices for the selected engine (templates/dashboard/_engine_catalog.html) ---
  [['stt', 'id_stt_engine', 'id_stt_model_path'], ['tts', 'id_tts_engine', 'id_tts_voice']].forEach(
    ([kind, selectId, inputId]) => {
      const select = $(selectId);
      const input = $(inputId);
      const catalog = document.querySelector(`[data-catalog="${kind}"]`);
      if (!select || !input || !catalog) return;
      const show = () => {
        let placeholder = '';
        catalog.querySelectorAll('.catalog-engine').forEach((block) => {
          const selected = block.dataset.engine === select.value;
          block.hidden = !selected;
          if (selected) placeholder = block.dataset.placeholder || '';
        });
        input.setAttribute('list', `${kind}-choices-${select.value}`);
        input.placeholder = placeholder;
      };
      select.addEventListener('change', show);
      show();
    });

  // --- voice preview: the greeting, in the voice the form currently shows ---
  const previewBtn = $('previewBtn');
  if (previewBtn) {
    previewBtn.addEventListener('click', async () => {
      const params = new URLSearchParams({
        engine: $('id_tts_engine').value,
        voice: $('id_tts_voice').value,
        speed: $('id_tts_speed').value || '1',
        text: $('id_greeting').value,
      });
      $('previewStatus').textContent = 'Synthesizing…';
      const response = await fetch('/dashboard/voice-preview/?' + params, { credentials: 'same-origin' });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        $('previewStatus').textContent = (body.error && body.error.message) || 'Preview failed.';
        return;
      }
      const audio = $('previewAudio');
      audio.src = URL.createObjectURL(await response.blob());
      audio.hidden = false;
      $('previewStatus').textContent = '';
      audio.play().catch(() => {});
    });
  }

  // --- talk to this agent ---
  const agentEl = document.getElementById('agent-id');
  if (!agentEl || !window.ThinnestAI) return;
  const agentId = JSON.parse(agentEl.textContent);
  const csrf = document.querySelector('input[name=csrfmiddlewaretoken]').value;
  const talk = (window.thinnestTalk = { events: [], call: null });
  const STATUS = { connecting: 'Connecting…', connected: 'Connected', listening: 'Listening…',
    agent_speaking: 'Agent is speaking…', reconnecting: 'Reconnecting…', ended: 'Call ended' };
  const box = $('talkTranscript');
  const mute = $('talkMute');

  // One line per utterance: its live text (transcript_partial) replaced in place, then its
  // final text (transcript). An empty partial takes the line away (speech that was not words).
  let lines = new Map();
  function line(utteranceId, role, text, final) {
    let p = lines.get(utteranceId);
    if (!text && !final) {
      if (p) { p.remove(); lines.delete(utteranceId); }
      return;
    }
    if (!p) {
      p = document.createElement('p');
      p.className = role;
      p.dataset.utterance = utteranceId;
      box.appendChild(p);
      lines.set(utteranceId, p);
    }
    p.textContent = (role === 'agent' ? 'Agent: ' : 'You: ') + text;
    p.classList.toggle('partial', !final);
    box.scrollTop = box.scrollHeight;
  }

  // What the staff user filled in for the prompt's {{placeholders}}: the call's context.
  function context() {
    const values = {};
    document.querySelectorAll('.talk-context-value').forEach((input) => {
      if (input.value.trim()) values[input.dataset.name] = input.value.trim();
    });
    return values;
  }

  function setMuted(muted) {
    if (talk.call) talk.call.mute(muted);
    mute.setAttribute('aria-pressed', muted ? 'true' : 'false');
    mute.textContent = muted ? 'Unmute' : 'Mute';
  }

  function idle() {
    $('talkBtn').hidden = false;
    $('talkHangup').hidden = true;
    mute.hidden = true;
    setMuted(false);
  }

  $('talkBtn').addEventListener('click', async () => {
    box.textContent = '';
    lines = new Map();
    $('talkResult').textContent = '';
    $('talkBtn').hidden = true;
    $('talkHangup').hidden = false;
    // The dashboard starts the call itself (staff login + CSRF), so no key is involved.
    const call = await ThinnestAI.createCall({
      agentId,
      startSession: () => fetch(`/dashboard/agents/${agentId}/talk/`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRFToken': csrf, 'Content-Type': 'application/json' },
        body: JSON.stringify({ context: context() }),
      }).then((r) => r.json().then((body) => {
        if (!r.ok) throw Object.assign(new Error(body.error.message), { code: body.error.code });
        return body;
      })),
    });
    talk.call = call;
    ['connected', 'transcript', 'transcript_partial', 'ended', 'error', 'status', 'mute'].forEach((name) =>
      call.on(name, (data) => talk.events.push({ type: name, data })));
    call.on('status', ({ status }) => { if (STATUS[status]) $('talkStatus').textContent = STATUS[status]; });
    call.on('connected', () => { mute.hidden = false; });
    call.on('transcript_partial', ({ role, text, utteranceId }) => line(utteranceId, role, text, false));
    call.on('transcript', ({ role, text, utteranceId }) => line(utteranceId, role, text, true));
    call.on('error', ({ message }) => { $('talkStatus').textContent = message; });
    call.on('ended', ({ duration }) => {
      idle();
      const seconds = Math.round(duration || 0);
      const link = document.createElement('a');
      link.href = `/dashboard/calls/${call.sessionId}/`;
      link.textContent = `See this call (${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}) in the history`;
      $('talkResult').replaceChildren(link);
    });
    call.connect().catch(idle);
  });
  mute.addEventListener('click', () => setMuted(!(talk.call && talk.call.muted)));
  $('talkHangup').addEventListener('click', () => talk.call && talk.call.disconnect());
})();
