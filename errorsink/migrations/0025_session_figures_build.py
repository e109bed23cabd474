"""Sessions remember the build their events are counted under in the quality figures.

Existing sessions start from their current build: their events were counted under the build
each event was stored with, which is the session's build for all but the few that raced ahead
of it (see docs/quality.md, "Builds")."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("errorsink", "0024_drop_per_session_rollups"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="figures_build",
            field=models.CharField(blank=True, max_length=200, null=True),
        ),
        migrations.RunSQL(
            "UPDATE errorsink_session SET figures_build = build_id",
            migrations.RunSQL.noop,
        ),
    ]
