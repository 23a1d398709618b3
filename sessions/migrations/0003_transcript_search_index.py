"""Full-text search over transcripts (dashboard call history): a GIN index on PostgreSQL.

SQLite, the laptop setting, searches with LIKE instead (sessions.selectors._transcript_matches)."""

from django.db import migrations

INDEX = "transcript_text_fts_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON call_sessions_transcriptentry "
            "USING gin (to_tsvector('english', text))"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("call_sessions", "0002_recording")]
    operations = [migrations.RunPython(create, drop)]
