# The 24-hour activity figures come from the quality rollups now, so no read uses this index;
# ingest no longer pays to write every error and warning through it. Dropped CONCURRENTLY so
# that ingest's writes are never blocked behind it.

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ("errorsink", "0008_event_retention_index"),
    ]

    operations = [
        RemoveIndexConcurrently(model_name="event", name="event_activity"),
    ]
