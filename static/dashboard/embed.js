// The embed page: snippets filled with the chosen agent, key and options, and a live widget
// preview. The server renders the same snippets first (dashboard/views/embed.py embed_snippets); the
// builders are plain functions so that tests can run them under node and compare.
const thinnestEmbedSnippets = (function () {
  // A JavaScript string literal that is also safe inside an HTML <script> element: JSON's
  // quoting, with "<" escaped so that "</script>" or "<!--" in a value cannot end or change the
  // element, and U+2028/U+2029 escaped for engines older than ES2019.
  function jsString(value) {
    return JSON.stringify(String(value))
      .replace(/</g, '\\u003c')
      .replace(/\u2028/g, '\\u2028')
      .replace(/\u2029/g, '\\u2029');
  }

  const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;' };
  const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);

  // A JSX string attribute ("...") has no escapes: values with these characters go in braces.
  const JSX_UNQUOTABLE = /["{}\\<>&\u0000-\u001f\u2028\u2029]/;
  const jsxProp = (name, value) =>
    JSX_UNQUOTABLE.test(value) ? `${name}={${jsString(value)}}` : `${name}="${value}"`;

  const KEYS = ['agentId', 'apiKey', 'position', 'theme', 'greeting', 'primaryColor'];

  function scriptTag(server, options) {
    return `<script src="${escapeHtml(server)}/widget.js"></script>\n<script>\nThinnestAI.init({\n` +
      KEYS.map((key) => `  ${key}: ${jsString(options[key])}`).join(',\n') + '\n});\n</script>';
  }

  function react(server, options) {
    const props = [jsxProp('serverUrl', server)].concat(KEYS.map((key) => jsxProp(key, options[key])));
    return "import { ThinnestVoiceWidget } from '@thinnest/embed-sdk';\n\nfunction App() {\n" +
      '  return (\n    <ThinnestVoiceWidget\n' +
      props.map((prop) => `      ${prop}\n`).join('') +
      "      onCallStart={(sessionId) => console.log('Call started:', sessionId)}\n" +
      "      onCallEnd={(sessionId, duration) => console.log('Call ended:', duration)}\n" +
      '    />\n  );\n}';
  }

  return { jsString, scriptTag, react };
})();

if (typeof module === 'object' && module.exports) {
  module.exports = thinnestEmbedSnippets; // node, for the tests
} else {
  (function () {
    const config = JSON.parse(document.getElementById('embed-config').textContent);
    const $ = (id) => document.getElementById(id);

    function options() {
      return {
        agentId: config.agentId,
        apiKey: config.apiKey,
        position: $('optPosition').value,
        theme: $('optTheme').value,
        greeting: $('optGreeting').value.trim() || 'Talk to us',
        primaryColor: $('optColor').value,
      };
    }

    function render() {
      const o = options();
      $('snippetScript').textContent = thinnestEmbedSnippets.scriptTag(config.server, o);
      $('snippetReact').textContent = thinnestEmbedSnippets.react(config.server, o);
      if (window.ThinnestAI && ThinnestAI.init) ThinnestAI.init({ ...o, serverUrl: config.server, autoOpen: true });
    }

    ['optPosition', 'optTheme', 'optGreeting', 'optColor'].forEach((id) => $(id).addEventListener('input', render));
    render();
  })();
}
