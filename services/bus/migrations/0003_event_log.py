"""The bus takes over the event log from the order service (orders 0002 readied the table),
and hands the operator's tables (faults, service states) to the console's app. State only: no
table is created, renamed or dropped, and every row stays where it is."""

import uuid

from django.db import migrations, models


def _content_types_follow(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="orders", model="event").update(app_label="bus")


class Migration(migrations.Migration):
    dependencies = [
        ("bus", "0002_console"),
        ("orders", "0002_event_to_bus"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Event",
                    fields=[
                        ("seq", models.BigAutoField(primary_key=True, serialize=False)),
                        (
                            "event_id",
                            models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
                        ),
                        ("type", models.CharField(db_index=True, max_length=40)),
                        ("version", models.PositiveSmallIntegerField()),
                        ("order_id", models.BigIntegerField(db_index=True)),
                        (
                            "mode",
                            models.CharField(
                                choices=[("events", "delivered"), ("sync", "recorded only")],
                                default="events",
                                max_length=8,
                            ),
                        ),
                        ("occurred_at", models.DateTimeField()),
                        ("producer", models.CharField(max_length=20)),
                        ("causation_id", models.UUIDField(blank=True, null=True)),
                        ("payload", models.JSONField()),
                        ("published_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "db_table": "orders_event",
                        "ordering": ["seq"],
                        "indexes": [
                            models.Index(
                                condition=models.Q(("published_at__isnull", True)),
                                fields=["seq"],
                                name="event_unpublished",
                            )
                        ],
                    },
                ),
                migrations.DeleteModel(name="Fault"),
                migrations.DeleteModel(name="ServiceState"),
            ],
        ),
        migrations.RunPython(_content_types_follow, migrations.RunPython.noop),
    ]
