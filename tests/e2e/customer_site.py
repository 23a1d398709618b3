"""A customer's web site for the browser tests: static pages on an origin of their own, and a
public key that allows that origin."""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from thinnest_site.launch import free_port


class Site:
    """A customer's web site: static pages on an origin of their own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        handler = partial(_QuietHandler, directory=str(directory))
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, name: str, html: str) -> str:
        (self.directory / name).write_text(html)
        return f"{self.origin}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def public_key_for(product, origin: str) -> str:
    agent_id = product.credentials["agent_id"]
    created = product.manage_json(
        "create_api_key", "--kind", "public", "--agent", agent_id, "--origin", origin
    )
    return created["key"]
