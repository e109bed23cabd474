# Errors stored before issues existed, for the backfill; built CONCURRENTLY so ingest is
# never blocked behind it.
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False


    dependencies = [
        ('errorsink', '0011_event_issue_indexes'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='event',
            index=models.Index(condition=models.Q(('fingerprint__isnull', True), ('kind', 'error')), fields=['id'], name='event_fingerprint_missing'),
        ),
    ]
