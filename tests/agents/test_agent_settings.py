"""An agent's settings are listed once (agents/settings_fields.py): the dashboard's form, its page
and the admin take that list, and the media worker's CallSpec names no setting outside it. An
Agent field added without a place in the list, or a list the form or admin stopped following,
fails here."""

from __future__ import annotations

from dataclasses import fields

import pytest
from django.contrib import admin

from agents.models import Agent
from agents.settings_fields import AGENT_SETTINGS_FIELDS, AGENT_SETTINGS_SECTIONS
from dashboard.forms import AgentForm
from voice.protocol import CallSpec

pytestmark = pytest.mark.django_db

# Agent fields nobody sets in a form: its identity and bookkeeping are the server's (and not
# editable), and whether it is active has actions of its own (deactivate, reactivate).
NOT_SETTINGS = {"is_active"}


def agent_settings() -> set[str]:
    return {
        field.name
        for field in Agent._meta.concrete_fields
        if field.editable and not field.primary_key and field.name not in NOT_SETTINGS
    }


def test_the_list_names_every_agent_setting_once():
    assert len(AGENT_SETTINGS_FIELDS) == len(set(AGENT_SETTINGS_FIELDS))
    assert set(AGENT_SETTINGS_FIELDS) == agent_settings()


def test_the_dashboard_form_has_every_setting_in_the_lists_sections():
    form = AgentForm()
    assert list(form.fields) == AGENT_SETTINGS_FIELDS
    assert [(title, [field.name for field in bound]) for title, bound in form.sections()] == [
        (title, list(names)) for title, names in AGENT_SETTINGS_SECTIONS
    ]


def test_the_agent_page_has_an_input_for_every_setting(admin_client, agent):
    page = admin_client.get(f"/dashboard/agents/{agent.public_id}/").content.decode()
    for title, names in AGENT_SETTINGS_SECTIONS:
        assert f"<legend>{title}</legend>" in page, title
        for name in names:
            assert f'name="{name}"' in page, name


def test_the_admin_shows_every_setting_in_the_lists_sections(admin_client, agent):
    fieldsets = admin.site._registry[Agent].fieldsets
    admin_fields = [name for _, options in fieldsets for name in options["fields"]]
    assert agent_settings() <= set(admin_fields)
    assert [(title, options["fields"]) for title, options in fieldsets[1:-1]] == [
        (title, list(names)) for title, names in AGENT_SETTINGS_SECTIONS
    ]
    page = admin_client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    for name in AGENT_SETTINGS_FIELDS:
        assert f'name="{name}"' in page, name


def test_every_setting_the_media_worker_runs_with_is_in_the_list():
    from_call = {"session_id", "agent_id", "context"}
    assert {field.name for field in fields(CallSpec)} - from_call <= set(AGENT_SETTINGS_FIELDS)
