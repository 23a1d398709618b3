// The embed page: snippets filled with the chosen agent and key, and a live widget preview.
(function () {
  const config = JSON.parse(document.getElementById('embed-config').textContent);
  const $ = (id) => document.getElementById(id);
  const q = (s) => JSON.stringify(s).replace(/"/g, "'");

  function options() {
    return {
      agentId: config.agentId,
      apiKey: config.apiKey,
      position: $('optPosition').value,
      theme: $('optTheme').value,
      greeting: $('optGreeting').value || 'Talk to us',
      primaryColor: $('optColor').value,
    };
  }

  function render() {
    const o = options();
    $('snippetScript').textContent =
      `<script src="${config.server}/widget.js"></script>\n<script>\nThinnestAI.init({\n` +
      `  agentId: ${q(o.agentId)},\n  apiKey: ${q(o.apiKey)},\n  position: ${q(o.position)},\n` +
      `  theme: ${q(o.theme)},\n  greeting: ${q(o.greeting)},\n  primaryColor: ${q(o.primaryColor)}\n});\n</script>`;
    $('snippetReact').textContent =
      `import { ThinnestVoiceWidget } from '@thinnest/embed-sdk';\n\nfunction App() {\n  return (\n` +
      `    <ThinnestVoiceWidget\n      serverUrl="${config.server}"\n      agentId="${o.agentId}"\n` +
      `      apiKey="${o.apiKey}"\n      position="${o.position}"\n      theme="${o.theme}"\n` +
      `      greeting=${JSON.stringify(o.greeting)}\n      primaryColor="${o.primaryColor}"\n` +
      `      onCallStart={(sessionId) => console.log('Call started:', sessionId)}\n` +
      `      onCallEnd={(sessionId, duration) => console.log('Call ended:', duration)}\n    />\n  );\n}`;
    if (window.ThinnestAI && ThinnestAI.init) ThinnestAI.init({ ...o, serverUrl: config.server, autoOpen: true });
  }

  ['optPosition', 'optTheme', 'optGreeting', 'optColor'].forEach((id) => $(id).addEventListener('input', render));
  render();
})();
