from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_openapi_schema_documents_voice_start(client):
    response = client.get("/api/schema/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    schema = response.json() if "json" in response["Content-Type"] else None
    text = response.content.decode()
    assert "/voice/start" in text and "websocket_url" in text
    if schema:
        assert "post" in schema["paths"]["/voice/start"]


def test_api_docs_page_uses_local_assets(client):
    page = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/" in page
    assert "cdn." not in page


def test_home_page_renders(client):
    assert client.get("/").status_code == 200


def test_models_and_migrations_agree():
    from io import StringIO

    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())  # exits 1 on drift
