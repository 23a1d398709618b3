// The agent page's chat box: a conversation in writing with the agent (dashboard/views/chat.py).
// The page keeps the conversation and sends its last turns with each question; each reply shows
// the documents it was given, linked to their pages, and how long it took.
(function () {
  const $ = (id) => document.getElementById(id);
  const configEl = $('chat-config');
  const form = $('chatForm');
  if (!configEl || !form) return;
  const config = JSON.parse(configEl.textContent);
  const MAX_TURNS = 20; // what the server takes: voice.chat.MAX_HISTORY_TURNS
  const csrf = document.querySelector('input[name=csrfmiddlewaretoken]').value;
  const log = $('chatLog');
  const question = $('chatQuestion');
  const status = $('chatStatus');
  // Exposed for the browser tests, as window.thinnestTalk is.
  const chat = (window.thinnestChat = { history: [], replies: [] });

  // The values typed for the prompt's {{placeholders}} (the test call's inputs, shared).
  function context() {
    const values = {};
    document.querySelectorAll('.talk-context-value').forEach((input) => {
      if (input.value.trim()) values[input.dataset.name] = input.value.trim();
    });
    return values;
  }

  function line(role, text) {
    const p = document.createElement('p');
    p.className = role;
    p.textContent = role === 'error' ? text : (role === 'agent' ? 'Agent: ' : 'You: ') + text;
    log.appendChild(p);
    log.scrollTop = log.scrollHeight;
    return p;
  }

  function describe(p, reply) {
    const documents = new Map(); // each document once, in the order retrieval ranked them
    reply.sources.forEach((source) => {
      if (!documents.has(source.document_id)) documents.set(source.document_id, source);
    });
    const sources = document.createElement('span');
    sources.className = 'turn-sources';
    if (documents.size) {
      sources.append('Sources: ');
      [...documents.values()].forEach((source, index) => {
        if (index) sources.append(', ');
        const link = document.createElement('a');
        link.href = source.url;
        link.textContent = source.title;
        link.dataset.document = source.document_id;
        sources.append(link);
      });
    } else {
      sources.textContent = 'No knowledge was given with this question.';
    }
    const meta = document.createElement('span');
    meta.className = 'turn-meta';
    meta.textContent = `${(reply.latency_ms / 1000).toFixed(1)} s to answer`;
    p.append(sources, meta);
    log.scrollTop = log.scrollHeight;
  }

  async function ask(text) {
    const response = await fetch(config.url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-CSRFToken': csrf, 'Content-Type': 'application/json' },
      body: JSON.stringify({ question: text, history: chat.history.slice(-MAX_TURNS), context: context() }),
    });
    if (response.redirected) throw new Error('Your login has ended: reload the page and log in again.');
    const body = await response.json().catch(() => null);
    if (!response.ok || !body || typeof body.reply !== 'string') {
      throw new Error((body && body.error && body.error.message) || `The server answered ${response.status}.`);
    }
    return body;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) {
      status.textContent = 'Type a question first.';
      return;
    }
    $('chatSend').disabled = true;
    status.textContent = 'The agent is writing…';
    line('user', text);
    question.value = '';
    try {
      const reply = await ask(text);
      describe(line('agent', reply.reply), reply);
      chat.history.push({ role: 'user', content: text }, { role: 'assistant', content: reply.reply });
      chat.history = chat.history.slice(-MAX_TURNS);
      chat.replies.push(reply);
      status.textContent = '';
    } catch (error) {
      // The question stays out of the history and back in the box, to send again.
      line('error', error.message || 'The server could not be reached.');
      question.value = text;
      status.textContent = '';
    } finally {
      $('chatSend').disabled = false;
    }
  });

  // Enter sends, Shift+Enter starts a new line.
  question.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  $('chatClear').addEventListener('click', () => {
    chat.history = [];
    chat.replies = [];
    log.textContent = '';
    status.textContent = '';
    question.focus();
  });
})();
