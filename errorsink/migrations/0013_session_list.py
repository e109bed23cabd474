# The sessions list (docs/issues.md): whether a session was degraded, kept by the rollups, and
# the indexes of the list, built CONCURRENTLY so that ingest is never blocked behind them.

import django.contrib.postgres.indexes
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

# Sessions the rollups counted degraded before the flag existed.
DEGRADED_FROM_ROLLUPS = """
UPDATE errorsink_session s SET degraded = true
WHERE NOT s.degraded AND EXISTS (
    SELECT 1 FROM errorsink_rollup_session r
    WHERE r.project_id = s.project_id AND r.session_id = s.session_id AND r.span = 'h'
      AND r.degraded > 0
)
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("errorsink", "0012_event_fingerprint_missing_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="degraded",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.RunSQL(DEGRADED_FROM_ROLLUPS, migrations.RunSQL.noop),
        AddIndexConcurrently(
            model_name="session",
            index=models.Index(fields=["project", "-first_seen", "-id"], name="session_started"),
        ),
        AddIndexConcurrently(
            model_name="session",
            index=models.Index(
                models.F("project"),
                django.contrib.postgres.indexes.OpClass("session_id", name="varchar_pattern_ops"),
                name="session_id_prefix",
            ),
        ),
    ]
