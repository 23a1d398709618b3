"""What protects the site itself, apart from the call API: private files in VAR_DIR, login
throttling on both login pages, secure cookies and HSTS behind HTTPS, and a 400 for a body in a
charset nobody can decode (issue 10, parts 6 and 8; the dashboard's permissions are in
tests/dashboard/test_access.py, secret keys in the admin in tests/agents/test_admin.py)."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from tests.factories import make_staff_user

BASE_DIR = Path(__file__).resolve().parent.parent
# What the settings read that a test here sets; the rest of the environment passes through.
SETTINGS_ENV = [
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "VAR_DIR",
    "TRUST_PROXY",
    "PUBLIC_BASE_URL",
    "SECURE_COOKIES",
    "HSTS_SECONDS",
]


def run_with_settings(code: str, **env: str) -> dict:
    """Runs ``code`` in a fresh Python whose settings read ``env`` (the settings are read once per
    process); ``code`` leaves its answer in ``result``."""
    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    environment.update(env, DJANGO_SETTINGS_MODULE="thinnest_site.settings")
    script = f"import json\nresult = {{}}\n{code}\nprint(json.dumps(result))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- files in VAR_DIR ------------------------------------------------------------------------

# Any chmod after the write means a moment in which the file was readable by others.
NO_CHMOD = """
import os, pathlib
def _refuse(*args, **kwargs):
    raise AssertionError("chmod after the file was written")
os.chmod = pathlib.Path.chmod = _refuse
os.umask(0o022)  # the common default: what a file made without an explicit mode gets
"""


def test_a_new_var_dir_its_secret_key_and_database_are_for_the_owner_only(tmp_path):
    var = tmp_path / "state" / "var"
    result = run_with_settings(
        NO_CHMOD
        + """
import os, stat
from django.conf import settings
import django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE probe (x integer)")
    cursor.execute("INSERT INTO probe VALUES (1)")
    # While the connection is open, SQLite's -wal and -shm files exist too.
    var = settings.VAR_DIR
    result = {
        name: stat.S_IMODE(os.stat(var / name).st_mode)
        for name in sorted(os.listdir(var))
        if os.path.isfile(var / name)  # staticfiles/ holds public files; var/ guards it anyway
    }
    result["."] = stat.S_IMODE(os.stat(var).st_mode)
    result["key_length"] = len(settings.SECRET_KEY)
""",
        VAR_DIR=str(var),
    )
    assert result.pop("key_length") >= 50
    assert result["."] == 0o700
    assert {"secret_key", "db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"} <= result.keys()
    assert {name: m for name, m in result.items() if m & 0o077 and name != "."} == {}
    assert result["secret_key"] == 0o600 and result["db.sqlite3"] == 0o600

    # Read back, not replaced, by the next process (logins and call tokens survive a restart).
    again = run_with_settings(
        "from django.conf import settings\nresult = {'key': settings.SECRET_KEY}", VAR_DIR=str(var)
    )
    assert again["key"] == (var / "secret_key").read_text()


@pytest.mark.django_db
def test_the_demo_credentials_file_is_private_from_its_first_byte(tmp_path, settings, monkeypatch):
    settings.VAR_DIR = tmp_path

    def refuse(*args, **kwargs):
        raise AssertionError("chmod after the file was written")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(Path, "chmod", refuse)
    path = tmp_path / "demo-credentials.json"
    previous = os.umask(0o022)
    try:
        call_command("bootstrap_demo", "--json", stdout=io.StringIO())
        assert mode(path) == 0o600
        created = json.loads(path.read_text())
        assert created["secret_key"].startswith("sk_")

        # A file an older version left readable by others is replaced, not rewritten in place
        # (someone may hold it open).
        monkeypatch.undo()
        path.chmod(0o644)
        inode = path.stat().st_ino
        monkeypatch.setattr(os, "chmod", refuse)
        monkeypatch.setattr(Path, "chmod", refuse)
        call_command("bootstrap_demo", "--json", stdout=io.StringIO())
    finally:
        os.umask(previous)
    assert mode(path) == 0o600 and path.stat().st_ino != inode
    assert json.loads(path.read_text())["secret_key"] == created["secret_key"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-credentials.json"]


# --- secure cookies and HSTS -----------------------------------------------------------------

READ_SECURITY_SETTINGS = """
from django.conf import settings
result = {
    name: getattr(settings, name)
    for name in [
        "SECURE_COOKIES", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
        "SECURE_CONTENT_TYPE_NOSNIFF",
    ]
}
"""


@pytest.mark.parametrize(
    "env",
    [{"TRUST_PROXY": "true"}, {"PUBLIC_BASE_URL": "https://voice.example.com"}],
    ids=["trust_proxy", "https_base_url"],
)
def test_behind_https_cookies_are_secure_and_hsts_is_a_year(env, tmp_path):
    assert run_with_settings(READ_SECURITY_SETTINGS, VAR_DIR=str(tmp_path), **env) == {
        "SECURE_COOKIES": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
    }


def test_over_plain_http_cookies_are_not_secure_and_there_is_no_hsts(tmp_path):
    values = run_with_settings(
        READ_SECURITY_SETTINGS, VAR_DIR=str(tmp_path), PUBLIC_BASE_URL="http://10.0.0.5:8000"
    )
    assert values["SECURE_COOKIES"] is False and values["SESSION_COOKIE_SECURE"] is False
    assert values["CSRF_COOKIE_SECURE"] is False and values["SECURE_HSTS_SECONDS"] == 0
    # A proxy that speaks plain HTTP to browsers turns it off; HSTS_SECONDS sets the duration.
    off = run_with_settings(
        READ_SECURITY_SETTINGS, VAR_DIR=str(tmp_path), TRUST_PROXY="true", SECURE_COOKIES="false"
    )
    assert off["SESSION_COOKIE_SECURE"] is False and off["SECURE_HSTS_SECONDS"] == 0
    short = run_with_settings(
        READ_SECURITY_SETTINGS, VAR_DIR=str(tmp_path), TRUST_PROXY="true", HSTS_SECONDS="600"
    )
    assert short["SESSION_COOKIE_SECURE"] is True and short["SECURE_HSTS_SECONDS"] == 600


# --- login throttling ------------------------------------------------------------------------

LOGIN_PAGES = ["/dashboard/login/", "/admin/login/"]


def log_in(client: Client, url: str, password: str, *, ip: str, **headers):
    return client.post(
        url, {"username": "boss", "password": password}, REMOTE_ADDR=ip, headers=headers
    )


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.django_db
@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_after_failed_logins_the_right_password_is_refused_from_that_ip_only(url):
    make_staff_user("boss", superuser=True)
    # A few typos are not a lockout.
    admin = Client()
    for _ in range(4):
        assert log_in(admin, url, "typo", ip="198.51.100.20").status_code == 200
    assert log_in(admin, url, "pw-boss-123", ip="198.51.100.20").status_code == 302
    assert logged_in(admin)

    attacker = Client()
    for _ in range(6):
        response = log_in(attacker, url, "guess", ip="203.0.113.7")
        assert response.status_code in (200, 429) and not logged_in(attacker)
    response = log_in(attacker, url, "pw-boss-123", ip="203.0.113.7")
    assert response.status_code == 429 and not logged_in(attacker)
    assert "Too many failed logins" in response.content.decode()

    # The real admin, elsewhere, is not locked out by a stranger.
    admin = Client()
    response = log_in(admin, url, "pw-boss-123", ip="198.51.100.20")
    assert response.status_code == 302 and logged_in(admin)


@pytest.mark.django_db
def test_a_forged_x_forwarded_for_does_not_dodge_the_lock():
    # Without TRUST_PROXY the header is the client's own word, so it is not the client's address.
    make_staff_user("boss", superuser=True)
    attacker = Client()
    for i in range(6):
        log_in(
            attacker, "/dashboard/login/", "guess", ip="203.0.113.7", x_forwarded_for=f"10.9.{i}.1"
        )
    response = log_in(
        attacker, "/dashboard/login/", "pw-boss-123", ip="203.0.113.7", x_forwarded_for="10.9.99.1"
    )
    assert response.status_code == 429 and not logged_in(attacker)


# --- bad input -------------------------------------------------------------------------------

BOUNDARY = "----thinnest"
MULTIPART_LOGIN = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="username"\r\n\r\nboss\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="password"\r\n\r\nx\r\n'
    f"--{BOUNDARY}--\r\n"
).encode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_a_login_post_in_a_charset_that_is_no_text_encoding_is_a_400(url):
    make_staff_user("boss", superuser=True)
    client = Client(raise_request_exception=False)
    # generic(): post() would encode the body in that charset first.
    for charset in ["rot13", "base64", "zip", "idna", "undefined", "no-such"]:
        for content_type, body in [
            (f"multipart/form-data; charset={charset}; boundary={BOUNDARY}", MULTIPART_LOGIN),
            (f"application/x-www-form-urlencoded; charset={charset}", b"username=boss&password=x"),
        ]:
            response = client.generic("POST", url, body, content_type=content_type)
            assert response.status_code == 400, content_type
            assert response["Content-Type"].startswith("text/plain"), content_type

    # Real charsets still work.
    login = MULTIPART_LOGIN.replace(b"\r\n\r\nx\r\n", b"\r\n\r\npw-boss-123\r\n")
    for charset in ["utf-8", "UTF-8", "latin-1", "windows-1252"]:
        content_type = f"multipart/form-data; charset={charset}; boundary={BOUNDARY}"
        response = Client().generic("POST", url, login, content_type=content_type)
        assert response.status_code == 302, charset


@pytest.mark.django_db
def test_a_body_in_such_a_charset_gets_the_json_error_on_api_paths():
    client = Client(raise_request_exception=False)
    for url in ["/voice/start", "/api/start-call", "/demo/api/start-call"]:
        response = client.generic(
            "POST", url, b'{"agent_id": "agent_x"}', content_type="application/json; charset=rot13"
        )
        assert response.status_code == 400, url
        assert response.json()["error"]["code"] == "invalid_request", url
