"""The partitions made before partitions had a light statistics target get it too
(errorsink/sessions/partitions.py, STATISTICS_TARGET): catalog changes only, no row is read."""

from django.db import migrations

TABLES = ("errorsink_event", "errorsink_event_key")


def statistics_light_everywhere(apps, schema_editor) -> None:
    from errorsink.sessions.partitions import partitions_of, statistics_light

    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            for partition in partitions_of(table):
                statistics_light(cursor, partition)


class Migration(migrations.Migration):
    dependencies = [
        ("errorsink", "0032_alert_rule_latency_p95"),
    ]

    operations = [
        migrations.RunPython(statistics_light_everywhere, migrations.RunPython.noop),
    ]
