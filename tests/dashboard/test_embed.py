"""The embed page's snippets (dashboard/views/embed.py): they run as written whatever the
options hold, and the live ones static/dashboard/embed.js builds are the server's."""

from __future__ import annotations

import json
import shutil
import subprocess
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

import pytest

from dashboard.views.embed import embed_snippets
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db


HOSTILE_GREETINGS = [
    "Let's talk",
    'Say "hi"',
    "</script><script>window.pwned = 1</script>",
    "<!--<script>",
    "back\\slash and\nnew line\u2028and U+2028",
    "Café ☕ — ok?",
]


def snippet_on_page(staff, agent, key, greeting: str) -> str:
    query = urlencode(
        {
            "agent": agent.public_id,
            "key": key.pk,
            "greeting": greeting,
            "theme": "dark",
            "color": "#112233",
        }
    )
    page = staff.get(f"/dashboard/embed/?{query}").content.decode()
    return unescape(page.split('<pre id="snippetScript" class="snippet">', 1)[1].split("</pre>")[0])


class _Scripts(HTMLParser):
    """The <script> elements of a page as a browser's parser splits them."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append({"attrs": dict(attrs), "text": ""})

    def handle_data(self, data):
        if self.scripts and self.lasttag == "script":
            self.scripts[-1]["text"] += data


needs_node = pytest.mark.skipif(
    shutil.which("node") is None,
    reason="node runs the generated JavaScript (apt-get install nodejs)",
)


def run_node(source: str, tmp_path: Path) -> str:
    script = tmp_path / "snippet.js"
    script.write_text(source)
    check = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    result = subprocess.run(
        ["node", str(script)], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_node
@pytest.mark.parametrize("greeting", HOSTILE_GREETINGS)
def test_the_embed_snippet_runs_with_any_button_text(staff, agent, tmp_path, greeting):
    key, raw = make_api_key(kind="public", agents=[agent], origins=["https://shop.example.com"])
    snippet = snippet_on_page(staff, agent, key, greeting)
    parser = _Scripts()
    parser.feed(snippet)
    # Exactly the two elements of the snippet: no value ends one or starts another.
    assert [bool(s["attrs"].get("src")) for s in parser.scripts] == [True, False]
    assert parser.scripts[0]["attrs"]["src"] == "http://testserver/widget.js"
    inline = parser.scripts[1]["text"]
    output = run_node(
        "const calls = [];\nglobalThis.ThinnestAI = { init: (o) => calls.push(o) };\n"
        + inline
        + "\nconsole.log(JSON.stringify(calls));",
        tmp_path,
    )
    assert json.loads(output) == [
        {
            "agentId": agent.public_id,
            "apiKey": raw,
            "position": "bottom-right",
            "theme": "dark",
            "greeting": greeting.strip(),
            "primaryColor": "#112233",
        }
    ]


@needs_node
def test_the_live_snippet_is_the_servers_snippet(tmp_path):
    """static/dashboard/embed.js builds the snippets as you type; for any value they are the
    ones the server renders (dashboard.views.embed.embed_snippets)."""
    embed_js = Path(__file__).resolve().parents[2] / "static" / "dashboard" / "embed.js"
    cases = [
        {
            "agentId": "agent_abc",
            "apiKey": "pk_x",
            "position": "bottom-left",
            "theme": "light",
            "greeting": greeting,
            "primaryColor": "#0066ff",
        }
        for greeting in HOSTILE_GREETINGS
    ]
    server = "https://voice.example.com"
    output = run_node(
        f"const s = require({json.dumps(str(embed_js))});\n"
        f"const cases = {json.dumps(cases)};\n"
        f"console.log(JSON.stringify(cases.map((o) => ({{script: s.scriptTag({json.dumps(server)}, o),"
        f" react: s.react({json.dumps(server)}, o)}}))));",
        tmp_path,
    )
    assert json.loads(output) == [embed_snippets(server, case) for case in cases]
    # The React snippet writes such values in braces: a JSX string attribute has no escapes.
    assert 'greeting="Let\'s talk"' in embed_snippets(server, cases[0])["react"]
    assert 'greeting={"Say \\"hi\\""}' in embed_snippets(server, cases[1])["react"]
