# Issues (docs/issues.md). The event indexes come in 0011, built concurrently.

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("errorsink", "0009_drop_event_activity_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="Issue",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "project",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="issues",
                        to="errorsink.project",
                    ),
                ),
                ("fingerprint", models.UUIDField()),
                ("fingerprint_parts", models.JSONField(default=list)),
                ("title", models.CharField(max_length=200)),
                ("code", models.CharField(max_length=128)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("unresolved", "unresolved"),
                            ("resolved", "resolved"),
                            ("ignored", "ignored"),
                        ],
                        default="unresolved",
                        max_length=12,
                    ),
                ),
                ("regressed", models.BooleanField(default=False)),
                ("event_count", models.BigIntegerField(default=0)),
                ("session_count", models.IntegerField(default=0)),
                ("first_seen", models.DateTimeField()),
                ("last_seen", models.DateTimeField()),
                (
                    "builds",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=200), default=list
                    ),
                ),
                ("status_changed_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "db_table": "errorsink_issue",
            },
        ),
        migrations.CreateModel(
            name="IssueHour",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "issue",
                        "hour",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "issue",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="errorsink.issue",
                    ),
                ),
                ("hour", models.DateTimeField()),
                ("count", models.IntegerField()),
            ],
            options={
                "db_table": "errorsink_issue_hour",
            },
        ),
        migrations.CreateModel(
            name="IssueSession",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "issue",
                        "session_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "issue",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="errorsink.issue",
                    ),
                ),
                ("session_id", models.CharField(max_length=200)),
            ],
            options={
                "db_table": "errorsink_issue_session",
            },
        ),
        migrations.AddField(
            model_name="event",
            name="fingerprint",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="issue",
            index=models.Index(
                fields=["project", "status", "-last_seen", "-id"], name="issue_recent"
            ),
        ),
        migrations.AddIndex(
            model_name="issue",
            index=models.Index(
                fields=["project", "status", "-event_count", "-id"], name="issue_count"
            ),
        ),
        migrations.AddIndex(
            model_name="issue",
            index=models.Index(
                fields=["project", "status", "-session_count", "-id"], name="issue_sessions"
            ),
        ),
        migrations.AddIndex(
            model_name="issue",
            index=models.Index(
                models.F("project"),
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Upper("code"), name="text_pattern_ops"
                ),
                name="issue_code_prefix",
            ),
        ),
        migrations.AddIndex(
            model_name="issue",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.search.SearchVector("title", config="simple"),
                name="issue_title_search",
            ),
        ),
        migrations.AddConstraint(
            model_name="issue",
            constraint=models.UniqueConstraint(
                fields=("project", "fingerprint"), name="issue_fingerprint"
            ),
        ),
        migrations.AddConstraint(
            model_name="issue",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ("unresolved", "resolved", "ignored"))),
                name="issue_status_known",
            ),
        ),
    ]
