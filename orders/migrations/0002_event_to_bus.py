"""The event log moves to the bus (services.bus.models.Event), table and rows unchanged.

The foreign key to the order goes (the column ``order_id`` stays), and the log gains ``mode``,
which readers used to join the order for: "sync" for the request-response checkout's events.
Then the model leaves this app's state; the bus's 0003 takes it over on the same table.
"""

import django.db.models.deletion
from django.db import migrations, models


def _mode_from_orders(apps, schema_editor):
    Event = apps.get_model("orders", "Event")
    Event.objects.filter(order__mode="sync").update(mode="sync")


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="event",
            name="order",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="orders.order",
            ),
        ),
        migrations.AddField(
            model_name="event",
            name="mode",
            field=models.CharField(
                choices=[("events", "delivered"), ("sync", "recorded only")],
                default="events",
                max_length=8,
            ),
        ),
        migrations.RunPython(_mode_from_orders, migrations.RunPython.noop),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Event")],
        ),
    ]
