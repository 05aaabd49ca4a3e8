"""The console takes over the operator's tables from the bus (bus 0003), on the same tables."""

from django.db import migrations, models


def _content_types_follow(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="bus", model__in=["fault", "servicestate"]).update(
        app_label="console"
    )


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("bus", "0003_event_log"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ServiceState",
                    fields=[
                        (
                            "service",
                            models.CharField(max_length=20, primary_key=True, serialize=False),
                        ),
                        ("running", models.BooleanField(default=True)),
                        ("changed_at", models.DateTimeField(auto_now=True)),
                        ("changed_by", models.CharField(blank=True, max_length=150)),
                    ],
                    options={"db_table": "bus_servicestate"},
                ),
                migrations.CreateModel(
                    name="Fault",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("service", models.CharField(max_length=20)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("latency", "added latency (ms)"),
                                    ("failure", "failure rate (0..1), retried then dead-lettered"),
                                    ("duplicate", "duplicate delivery of every event"),
                                    ("decline", "forced payment decline"),
                                    ("out_of_stock", "forced out of stock"),
                                ],
                                max_length=16,
                            ),
                        ),
                        ("value", models.FloatField(default=0)),
                        ("order_id", models.BigIntegerField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("created_by", models.CharField(blank=True, max_length=150)),
                    ],
                    options={"db_table": "bus_fault", "ordering": ["service", "kind", "id"]},
                ),
            ],
        ),
        migrations.RunPython(_content_types_follow, migrations.RunPython.noop),
    ]
