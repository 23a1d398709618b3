import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';

import { ThinnestVoiceWidget } from '@thinnest/embed-sdk';

// The settings come from the query string, so one build works against any server.
const params = new URLSearchParams(window.location.search);
const serverUrl = params.get('server') ?? '';
const agentId = params.get('agent') ?? 'agent_xyz';
const apiKey = params.get('key') ?? 'YOUR_PUBLIC_KEY';

type Entry = [event: string, data: unknown];

function App() {
  // Every event re-renders the app with new callback functions: the widget must stay the same.
  const [log, setLog] = useState<Entry[]>([]);
  const add = (event: string, data: unknown) => setLog((entries) => [...entries, [event, data]]);
  return (
    <>
      <ThinnestVoiceWidget
        agentId={agentId}
        apiKey={apiKey}
        serverUrl={serverUrl}
        position="bottom-right"
        theme="light"
        greeting="Talk to Acme"
        context={{ page: window.location.pathname, plan: 'pro' }}
        onCallStart={(sessionId) => {
          console.log('Call started:', sessionId);
          add('call-start', { sessionId });
        }}
        onCallEnd={(sessionId, duration) => {
          console.log('Call ended:', duration);
          add('call-end', { sessionId, duration });
        }}
        onTranscript={(transcript) => {
          if (transcript.final) add('transcript', transcript);
        }}
        onError={(error) => add('error', error)}
      />
      <h2>Events</h2>
      {/* One JSON line per event, read by tests/e2e/test_react.py. */}
      <pre id="log">{log.map((entry) => JSON.stringify(entry)).join('\n')}</pre>
    </>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
