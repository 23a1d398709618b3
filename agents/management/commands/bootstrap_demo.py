"""Make the demo usable right after install: a demo agent, keys and an admin login.

Idempotent. Raw keys cannot be read back from the database (only hashes are stored), so the
credentials created here are kept in VAR_DIR/demo-credentials.json (mode 600) and printed on
every run; a key in that file that no longer works (revoked, deleted) is replaced.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from agents.keys import DEMO_SECRET_KEY_NAME
from agents.models import ApiKey
from agents.origins import normalize_origins
from agents.selectors import agent_get_active, api_key_get_by_raw_key
from agents.services import agent_create, api_key_create, api_key_update

DEMO_PROMPT = (
    "You are the friendly voice assistant of {{company}}, a bakery. It opens at 8 am and closes "
    "at 6 pm every day, Saturday included. The caller is on the {{page}} page."
)
DEMO_GREETING = "Hello! I'm the demo assistant. How can I help you today?"


def _private_file_write(path: Path, text: str) -> None:
    # A new file, mode 0600 from the start (mkstemp: O_CREAT | O_EXCL, 0600), put in place
    # atomically: write-then-chmod leaves a moment in which another user may open the file, and a
    # file an older version left readable by others may be held open by one, so it is replaced
    # rather than rewritten.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


class Command(BaseCommand):
    help = "Create (once) and print the demo agent, a secret and a public key, and an admin login."

    def add_arguments(self, parser):
        parser.add_argument(
            "--origin",
            action="append",
            dest="origins",
            default=None,
            help="Origin allowed to use the demo public key (repeatable). "
            "Default: http://127.0.0.1:8000 and http://localhost:8000.",
        )
        parser.add_argument("--admin-user", default="admin")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        origins = options["origins"] or ["http://127.0.0.1:8000", "http://localhost:8000"]
        path = settings.VAR_DIR / "demo-credentials.json"
        saved = json.loads(path.read_text()) if path.exists() else {}

        agent = agent_get_active(public_id=settings.DEMO_AGENT_ID) or agent_create(
            public_id=settings.DEMO_AGENT_ID,
            name="Demo agent",
            system_prompt=DEMO_PROMPT,
            greeting=DEMO_GREETING,
        )

        def usable(raw: str | None, kind: str) -> bool:
            key = api_key_get_by_raw_key(raw) if raw else None
            return key is not None and not key.is_revoked and key.kind == kind

        if not usable(saved.get("secret_key"), ApiKey.Kind.SECRET):
            _, saved["secret_key"] = api_key_create(
                kind=ApiKey.Kind.SECRET, name=DEMO_SECRET_KEY_NAME, agents=[agent]
            )
        if not usable(saved.get("public_key"), ApiKey.Kind.PUBLIC):
            _, saved["public_key"] = api_key_create(
                kind=ApiKey.Kind.PUBLIC,
                name="Demo public key",
                agents=[agent],
                allowed_origins=origins,
            )
        else:
            # Served on another host or port this time: let the demo key work there too.
            public_key = api_key_get_by_raw_key(saved["public_key"])
            wanted = sorted(set(public_key.allowed_origins) | set(normalize_origins(origins)))
            if wanted != public_key.allowed_origins:
                api_key_update(
                    api_key=public_key,
                    name=public_key.name,
                    agents=list(public_key.agents.all()),
                    allowed_origins=wanted,
                    rate_limit_per_minute=public_key.rate_limit_per_minute,
                )

        user_model = get_user_model()
        username = options["admin_user"]
        user = user_model.objects.filter(username=username).first()
        if user is None:
            saved["admin_password"] = secrets.token_urlsafe(12)
            user_model.objects.create_superuser(
                username=username, email="", password=saved["admin_password"]
            )
        elif not user.check_password(saved.get("admin_password", "")):
            # The account's password was set elsewhere: leave it alone.
            saved["admin_password"] = "(set outside this command; not shown)"

        saved.update(
            agent_id=agent.public_id,
            admin_user=username,
            public_key_origins=api_key_get_by_raw_key(saved["public_key"]).allowed_origins,
        )
        _private_file_write(path, json.dumps(saved, indent=2))

        if options["json"]:
            self.stdout.write(json.dumps(saved))
            return
        self.stdout.write(
            "\nDemo credentials (kept in {path}):\n"
            "  agent id     {agent_id}\n"
            "  secret key   {secret_key}\n"
            "  public key   {public_key}  (origins: {origins})\n"
            "  admin login  {admin_user} / {admin_password}\n".format(
                path=path, origins=", ".join(saved["public_key_origins"]), **saved
            )
        )
