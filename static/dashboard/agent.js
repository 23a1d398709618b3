// The agent form: voice preview, and "Talk to this agent" through the SDK.
(function () {
  const $ = (id) => document.getElementById(id);

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

  function line(role, text, final) {
    const box = $('talkTranscript');
    let p = box.querySelector('p.partial.' + role);
    if (!p) { p = document.createElement('p'); p.className = role; box.appendChild(p); }
    p.textContent = (role === 'agent' ? 'Agent: ' : 'You: ') + text;
    p.classList.toggle('partial', !final);
    box.scrollTop = box.scrollHeight;
  }

  $('talkBtn').addEventListener('click', async () => {
    $('talkTranscript').textContent = '';
    $('talkResult').textContent = '';
    $('talkBtn').hidden = true;
    $('talkHangup').hidden = false;
    // The dashboard starts the call itself (staff login + CSRF), so no key is involved.
    const call = await ThinnestAI.createCall({
      agentId,
      startSession: () => fetch(`/dashboard/agents/${agentId}/talk/`, {
        method: 'POST', credentials: 'same-origin', headers: { 'X-CSRFToken': csrf },
      }).then((r) => r.json().then((body) => {
        if (!r.ok) throw Object.assign(new Error(body.error.message), { code: body.error.code });
        return body;
      })),
    });
    talk.call = call;
    ['connected', 'transcript', 'ended', 'error', 'status'].forEach((name) =>
      call.on(name, (data) => talk.events.push({ type: name, data })));
    call.on('status', ({ status }) => { if (STATUS[status]) $('talkStatus').textContent = STATUS[status]; });
    call.on('transcript', ({ role, text, final }) => line(role, text, final));
    call.on('error', ({ message }) => { $('talkStatus').textContent = message; });
    call.on('ended', ({ duration }) => {
      $('talkBtn').hidden = false;
      $('talkHangup').hidden = true;
      const link = document.createElement('a');
      link.href = `/dashboard/calls/${call.sessionId}/`;
      link.textContent = `See this call (${Math.round(duration)} s) in the history`;
      $('talkResult').replaceChildren(link);
    });
    call.connect().catch(() => {
      $('talkBtn').hidden = false;
      $('talkHangup').hidden = true;
    });
  });
  $('talkHangup').addEventListener('click', () => talk.call && talk.call.disconnect());
})();
