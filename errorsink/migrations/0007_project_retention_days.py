# Retention per project (docs/quality.md). Existing projects get ERRORSINK_RETENTION_DAYS as
# it is set when the migration runs (the callable default is evaluated once for them), so an
# operator's global retention keeps meaning the same on upgrade.

import errorsink.models
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('errorsink', '0006_quality_rollups'),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='retention_days',
            field=models.PositiveSmallIntegerField(default=errorsink.models.default_retention_days),
        ),
        migrations.AddConstraint(
            model_name='project',
            constraint=models.CheckConstraint(condition=models.Q(('retention_days__range', (1, 400))), name='project_retention_days_range'),
        ),
    ]
