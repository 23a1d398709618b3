"""The deploy files (Procfile, deploy/systemd, deploy/nginx) held against the code they run:
commands that exist, stop timeouts that cover a media worker's drain, an nginx site that upgrades
the real call socket path and serves the real static files. Neither may drift from the other
unnoticed."""

from __future__ import annotations

import ast
import configparser
import importlib.util
import inspect
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from daphne.server import Server
from django.conf import settings
from django.core.management import get_commands
from honcho.environ import parse_procfile

from sessions.routing import websocket_urlpatterns
from thinnest_site.launch import BIN
from voice.shutdown import EXIT_AFTER_DRAIN_SECONDS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = {
    "web": "thinnest-web.service",
    "worker": "thinnest-media-worker@.service",
    "celery": "thinnest-celery.service",
}
# Where deploy/README.md installs the product, and where systemd's StateDirectory=thinnest is.
INSTALL_DIR = "/opt/thinnest"
STATE_DIR = "/var/lib/thinnest"
WEB_ADDRESS = ("127.0.0.1", "8000")


def read_unit(file_name: str) -> configparser.ConfigParser:
    # No interpolation: %i is systemd's. Keys keep their case, as systemd's do.
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str
    unit.read_string((DEPLOY / "systemd" / file_name).read_text())
    return unit


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|min)?", value.strip())
    assert match, f"not a time span this test reads: {value!r}"
    return float(match[1]) * (60 if match[2] == "min" else 1)


def module_assigns(module: str, name: str) -> bool:
    # Read, not imported: thinnest_site.asgi loads the voice models as it is imported.
    tree = ast.parse((ROOT / Path(*module.split("."))).with_suffix(".py").read_text())
    return any(
        isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets)
        for node in tree.body
    )


def product_process(argv: list[str]) -> str:
    """Which process a command runs ("web", "worker", "celery"), after checking that what it
    names exists: the program in the virtualenv, the ASGI application, the management command,
    the Celery app."""
    if argv[0] == "exec":
        argv = argv[1:]
    program = Path(argv[0]).name
    assert (BIN / program).exists(), f"{program} is not installed in the virtualenv"
    if program == "daphne":
        module, attribute = argv[-1].split(":")
        assert module_assigns(module, attribute), argv[-1]
        assert module == settings.ASGI_APPLICATION.rsplit(".", 1)[0]
        return "web"
    if program == "python":
        assert argv[1] == "manage.py", argv
        assert argv[2] in get_commands(), f"no management command {argv[2]}"
        return {"run_media_worker": "worker"}[argv[2]]
    if program == "celery":
        from thinnest_site.celery import app

        assert argv[argv.index("-A") + 1] == app.main
        assert argv[argv.index("-A") + 2] == "worker"
        assert "-B" in argv  # the periodic jobs: ending abandoned calls, retention
        return "celery"
    raise AssertionError(f"not a product process: {argv}")


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


# --- systemd -------------------------------------------------------------------------------------


@pytest.mark.parametrize("process", UNITS)
def test_each_unit_runs_its_process_from_the_install_directory(process):
    service = read_unit(UNITS[process])["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].startswith(f"{INSTALL_DIR}/.venv/bin/")
    assert product_process(argv) == process
    assert service["WorkingDirectory"] == INSTALL_DIR  # manage.py is found there


@pytest.mark.parametrize("process", UNITS)
def test_each_unit_reads_the_env_file_as_its_own_user_and_restarts_on_failure(process):
    service = read_unit(UNITS[process])["Service"]
    assert service["EnvironmentFile"] == "/etc/thinnest/env"
    assert service["User"] == "thinnest" and service["Group"] == "thinnest"
    assert service["Restart"] == "on-failure"
    # VAR_DIR is the state directory systemd makes for the user.
    assert f"VAR_DIR={STATE_DIR}" in service["Environment"].split()
    assert service["StateDirectory"] == Path(STATE_DIR).name


@pytest.mark.parametrize("process", UNITS)
def test_each_unit_waits_out_the_drain_before_sigkill(process):
    service = read_unit(UNITS[process])["Service"]
    assert service["KillSignal"] == "SIGTERM"
    # SIGTERM reaches the main process only: a draining media worker still needs its helpers.
    assert service["KillMode"] == "mixed"
    # A process told to stop exits within SHUTDOWN_GRACE_SECONDS + EXIT_AFTER_DRAIN_SECONDS.
    assert seconds(service["TimeoutStopSec"]) > (
        settings.SHUTDOWN_GRACE_SECONDS + EXIT_AFTER_DRAIN_SECONDS
    )


def test_the_media_worker_unit_is_a_template_for_several_workers():
    assert UNITS["worker"].endswith("@.service")
    assert "%i" in read_unit(UNITS["worker"])["Unit"]["Description"]


def test_the_web_unit_listens_where_nginx_proxies():
    argv = shlex.split(read_unit(UNITS["web"])["Service"]["ExecStart"])
    assert (option(argv, "-b"), option(argv, "-p")) == WEB_ADDRESS


def test_celery_keeps_its_beat_schedule_in_the_state_directory():
    argv = shlex.split(read_unit(UNITS["celery"])["Service"]["ExecStart"])
    assert option(argv, "--schedule").startswith(f"{STATE_DIR}/")


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
def test_systemd_accepts_the_units(tmp_path):
    # With this checkout in place of /opt/thinnest, so that systemd finds the programs.
    for file_name in UNITS.values():
        text = (DEPLOY / "systemd" / file_name).read_text()
        (tmp_path / file_name).write_text(text.replace(INSTALL_DIR, str(ROOT)))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / f) for f in UNITS.values())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")


# --- Procfile ------------------------------------------------------------------------------------


def test_the_procfile_runs_the_same_three_processes():
    processes = parse_procfile((ROOT / "Procfile").read_text()).processes
    assert {name: product_process(shlex.split(cmd)) for name, cmd in processes.items()} == {
        name: name for name in UNITS
    }
    web = shlex.split(processes["web"])
    # honcho hands each process its own $PORT; HOST lets it listen beyond loopback.
    assert (option(web, "-b"), option(web, "-p")) == ("${HOST:-127.0.0.1}", "$PORT")


def run_procfile_module():
    spec = importlib.util.spec_from_file_location("run_procfile", DEPLOY / "run_procfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_procfile_makes_honcho_wait_out_the_drain_before_sigkill():
    import honcho.manager

    run_procfile = run_procfile_module()
    # The constant it overrides is still honcho's, and still too short.
    assert honcho.manager.KILL_WAIT < settings.SHUTDOWN_GRACE_SECONDS
    drain = settings.SHUTDOWN_GRACE_SECONDS + EXIT_AFTER_DRAIN_SECONDS
    assert run_procfile.kill_wait_seconds({}) > drain
    assert run_procfile.kill_wait_seconds({"SHUTDOWN_GRACE_SECONDS": "60"}) > 60 + (
        EXIT_AFTER_DRAIN_SECONDS
    )


def test_run_procfile_reads_the_grace_period_from_the_env_file_as_honcho_does(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SHUTDOWN_GRACE_SECONDS", "20")
    (tmp_path / ".env").write_text("SHUTDOWN_GRACE_SECONDS=90\n")
    env = run_procfile_module().processes_env(tmp_path / ".env")
    assert env["SHUTDOWN_GRACE_SECONDS"] == "90"  # honcho: .env wins over the environment


# --- nginx ---------------------------------------------------------------------------------------


def nginx_site() -> str:
    return (DEPLOY / "nginx" / "thinnest.conf").read_text()


def nginx_locations() -> dict[str, list[list[str]]]:
    """Each ``location`` block of the site: its directives, as lists of words."""
    text = re.sub(r"#[^\n]*", "", nginx_site())
    blocks = re.findall(r"location\s+(\S+)\s*\{([^{}]*)\}", text)
    return {
        path: [shlex.split(directive) for directive in body.split(";") if directive.strip()]
        for path, body in blocks
    }


def directive(block: list[list[str]], name: str) -> list[list[str]]:
    return [words[1:] for words in block if words[0] == name]


def call_socket_prefix() -> str:
    # The literal start of the call socket's route (sessions/routing.py), e.g. "/ws/".
    pattern = websocket_urlpatterns[0].pattern.regex.pattern
    return "/" + re.match(r"\^([\w/-]*)", pattern)[1]


PROXY_HEADERS = {
    # What TRUST_PROXY makes the product believe (thinnest_site/settings/base.py):
    # SECURE_PROXY_SSL_HEADER, USE_X_FORWARDED_HOST, and DRF's NUM_PROXIES=1 for the client IP,
    # which is the last address of X-Forwarded-For.
    "X-Forwarded-Proto": "$scheme",
    "X-Forwarded-Host": "$host",
    "X-Forwarded-For": "$proxy_add_x_forwarded_for",
    "Host": "$host",
}


def test_nginx_upgrades_the_call_socket_on_its_real_path():
    prefix = call_socket_prefix()
    assert prefix == "/ws/"  # the route begins with a literal path nginx can match
    block = nginx_locations()[prefix]
    assert directive(block, "proxy_http_version") == [["1.1"]]
    headers = dict(directive(block, "proxy_set_header"))
    assert headers["Upgrade"] == "$http_upgrade"
    assert headers["Connection"].lower() == "upgrade"
    assert PROXY_HEADERS.items() <= headers.items()
    assert directive(block, "proxy_pass") == [[f"http://{':'.join(WEB_ADDRESS)}"]]


def test_nginx_keeps_a_quiet_call_socket_open():
    # Daphne pings each socket every ping_interval seconds; nginx must wait far longer than
    # that between two reads, or it ends a call whose caller and agent are both silent.
    ping_interval = inspect.signature(Server).parameters["ping_interval"].default
    (timeout,) = directive(nginx_locations()[call_socket_prefix()], "proxy_read_timeout")
    assert seconds(timeout[0]) >= max(3600, 10 * ping_interval)


def test_nginx_proxies_everything_else_with_the_headers_the_product_trusts():
    block = nginx_locations()["/"]
    assert directive(block, "proxy_pass") == [[f"http://{':'.join(WEB_ADDRESS)}"]]
    assert PROXY_HEADERS.items() <= dict(directive(block, "proxy_set_header")).items()


def test_nginx_serves_the_static_files_from_static_root():
    (alias,) = directive(nginx_locations()[settings.STATIC_URL], "alias")
    static_dir = Path(settings.STATIC_ROOT).relative_to(settings.VAR_DIR)
    assert alias == [f"{STATE_DIR}/{static_dir}/"]
    # nginx, in the group thinnest, may pass through the state directory to them.
    for file_name in UNITS.values():
        mode = int(read_unit(file_name)["Service"]["StateDirectoryMode"], 8)
        assert mode & 0o010, file_name


def test_nginx_never_serves_recordings_as_files():
    block = nginx_locations().get(settings.MEDIA_URL, [])
    assert not directive(block, "alias") and not directive(block, "root")


def test_nginx_accepts_the_largest_knowledge_upload():
    (size,) = re.findall(r"client_max_body_size\s+(\d+)m;", nginx_site())
    assert int(size) * 1024 * 1024 > settings.KNOWLEDGE_MAX_UPLOAD_BYTES


def test_nginx_redirects_http_to_https():
    servers = re.split(r"\bserver\s*\{", re.sub(r"#[^\n]*", "", nginx_site()))[1:]
    (plain,) = [s for s in servers if re.search(r"listen\s+80;", s)]
    assert "return 301 https://$host$request_uri;" in plain
    assert "proxy_pass" not in plain


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed here")
def test_nginx_accepts_the_site(tmp_path):
    # The site inside a minimal nginx.conf, with a throwaway certificate for the real one's paths.
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=voice.example.com", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    site = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", nginx_site())
    site = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", site)
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
