"""Full-text search over call summaries (the dashboard's call search matches them as well as
transcripts): a GIN index on PostgreSQL, as 0003 made for transcripts.

SQLite, the laptop setting, searches with LIKE instead (sessions.selectors._summary_matches)."""

from django.db import migrations

INDEX = "call_summary_fts_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON call_sessions_callsession "
            "USING gin (to_tsvector('english', summary))"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("call_sessions", "0004_call_summary_and_turn_sources")]
    operations = [migrations.RunPython(create, drop)]
