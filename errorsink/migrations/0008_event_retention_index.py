# The index the retention prune walks: each project's events, oldest first. Built
# CONCURRENTLY so that adding it to a large event table never blocks ingest's writes.

import django.db.models.functions.comparison
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('errorsink', '0007_project_retention_days'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='event',
            index=models.Index(models.F('project'), django.db.models.functions.comparison.Least('occurred_at', 'received_at'), name='event_retention'),
        ),
    ]
