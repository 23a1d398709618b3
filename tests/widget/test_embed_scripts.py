"""/widget.js and /sdk.js: what customers' pages load with one script tag."""

from __future__ import annotations

import pytest

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
