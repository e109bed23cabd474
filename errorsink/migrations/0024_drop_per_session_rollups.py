"""The per-session rollup rows go: every quality read merges the figure tables (0021)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('errorsink', '0023_figure_metric_extremes'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='rollupcodebucket',
            name='rollup_c_min',
        ),
        migrations.RemoveIndex(
            model_name='rollupmetricbucket',
            name='rollup_m_min',
        ),
        migrations.RemoveIndex(
            model_name='rollupsessionbucket',
            name='rollup_s_min',
        ),
        migrations.RemoveField(
            model_name='rollupmetricbucket',
            name='project',
        ),
        migrations.RemoveField(
            model_name='rollupsessionbucket',
            name='project',
        ),
        migrations.DeleteModel(
            name='RollupCodeBucket',
        ),
        migrations.DeleteModel(
            name='RollupMetricBucket',
        ),
        migrations.DeleteModel(
            name='RollupSessionBucket',
        ),
    ]
