"""Shared output for the operator commands: one JSON object with --json, readable lines without."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand


def emit(command: BaseCommand, data: dict, *, as_json: bool) -> None:
    if as_json:
        command.stdout.write(json.dumps(data))
        return
    for key, value in data.items():
        command.stdout.write(f"{key}: {value}")
