"""/widget.js and /sdk.js: what customers' pages load with one script tag."""

from __future__ import annotations

import gzip
import os
import shutil

import pytest

from widget import views

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/widget.js", "/sdk.js", "/v1/widget.js", "/v1.0.0/sdk.js"])
def test_it_serves_the_scripts_to_any_site(client, path):
    response = client.get(path, HTTP_ORIGIN="https://shop.example.com")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"ThinnestAI" in response.content


def test_the_widget_carries_the_sdk_so_one_script_tag_is_enough(client):
    widget = client.get("/widget.js").content.decode()
    sdk = client.get("/sdk.js").content.decode()
    assert widget.startswith(sdk)
    assert "api.createCall = createCall" in sdk and "api.init = function" in widget
    assert "api.init" not in sdk


def test_stable_paths_revalidate_and_the_exact_version_is_immutable(client):
    stable = client.get("/widget.js")
    assert "max-age=300" in stable["Cache-Control"]
    assert client.get("/v1.0.0/widget.js")["Cache-Control"].endswith("immutable")
    again = client.get("/widget.js", HTTP_IF_NONE_MATCH=stable["ETag"])
    assert again.status_code == 304 and again.content == b""
    assert client.get("/widget.js", HTTP_IF_NONE_MATCH='"other"').status_code == 200


@pytest.mark.parametrize("path", ["/v2/widget.js", "/v1/other.js", "/v0.9.0/sdk.js"])
def test_unknown_versions_and_names_are_404(client, path):
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("path", ["/widget.js", "/sdk.js", "/v1.0.0/widget.js"])
def test_it_serves_the_scripts_gzipped_to_a_client_that_accepts_gzip(client, path):
    plain = client.get(path)
    zipped = client.get(path, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert "Content-Encoding" not in plain
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == plain.content
    assert len(zipped.content) < len(plain.content) / 3
    assert int(zipped["Content-Length"]) == len(zipped.content)
    for response in (plain, zipped):
        assert response["Vary"] == "Accept-Encoding"
        assert response["Access-Control-Allow-Origin"] == "*"
        assert response["Content-Type"] == "application/javascript; charset=utf-8"
    assert zipped["Cache-Control"] == plain["Cache-Control"]
    # Two representations, two tags: a cache that keys on the tag cannot hand one for the other.
    assert zipped["ETag"] != plain["ETag"]


def test_the_gzipped_script_revalidates_by_its_own_etag(client):
    zipped = client.get("/widget.js", HTTP_ACCEPT_ENCODING="gzip")
    again = client.get("/widget.js", HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=zipped["ETag"])
    assert again.status_code == 304 and again.content == b""
    assert again["ETag"] == zipped["ETag"] and again["Vary"] == "Accept-Encoding"
    # A proxy may hand the tag back weak.
    weak = client.get(
        "/widget.js", HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH="W/" + zipped["ETag"]
    )
    assert weak.status_code == 304
    # The plain tag does not validate the gzipped body, nor the other way round.
    plain_tag = client.get("/widget.js")["ETag"]
    assert (
        client.get(
            "/widget.js", HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=plain_tag
        ).status_code
        == 200
    )
    assert client.get("/widget.js", HTTP_IF_NONE_MATCH=zipped["ETag"]).status_code == 200


@pytest.mark.parametrize("accept", ["gzip;q=0", "identity", "br", "*;q=0", "gzip;q=0, *"])
def test_a_client_that_refuses_gzip_gets_the_plain_script(client, accept):
    response = client.get("/widget.js", HTTP_ACCEPT_ENCODING=accept)
    assert "Content-Encoding" not in response
    assert b"ThinnestAI" in response.content


def test_the_scripts_are_compressed_once_per_version_of_the_files(client, monkeypatch, tmp_path):
    for name in ("sdk.js", "widget.js"):
        shutil.copy(views.EMBED_DIR / name, tmp_path / name)
    monkeypatch.setattr(views, "EMBED_DIR", tmp_path)
    calls = []
    real = gzip.compress
    monkeypatch.setattr(views.gzip, "compress", lambda *a, **k: calls.append(1) or real(*a, **k))
    views._embed_bundle.cache_clear()
    for _ in range(3):
        first = client.get("/sdk.js", HTTP_ACCEPT_ENCODING="gzip")
    assert len(calls) == 1
    # A new version of the file is compressed again, and gets a new tag.
    (tmp_path / "sdk.js").write_text((tmp_path / "sdk.js").read_text() + "\n// v2\n")
    later = os.stat(tmp_path / "sdk.js").st_mtime + 5
    os.utime(tmp_path / "sdk.js", (later, later))
    second = client.get("/sdk.js", HTTP_ACCEPT_ENCODING="gzip")
    assert len(calls) == 2
    assert second["ETag"] != first["ETag"]
    assert gzip.decompress(second.content).endswith(b"// v2\n")
