# An issue's events by (fingerprint, id) instead of (project, fingerprint, arrival, id): half the
# width, and ingest writes every error into it at a random place (bench/ingest.py measured the
# wide one as the largest part of what grouping cost). Built before the old one goes, both
# CONCURRENTLY, so reads and ingest are never blocked.

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("errorsink", "0013_session_list"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(
                condition=models.Q(("kind", "error")),
                fields=["fingerprint", "-id"],
                name="event_issue_newest",
            ),
        ),
        RemoveIndexConcurrently(model_name="event", name="event_issue"),
    ]
