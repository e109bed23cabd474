# The event table's indexes for issues, built CONCURRENTLY so that ingest is never blocked
# behind them on an existing installation.

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("errorsink", "0010_issues"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(
                condition=models.Q(("kind", "error")),
                fields=["project", "fingerprint", "-received_at", "-id"],
                name="event_issue",
            ),
        ),
        AddIndexConcurrently(
            model_name="event",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.search.SearchVector("message", config="simple"),
                condition=models.Q(("kind", "error")),
                name="event_message_search",
            ),
        ),
    ]
