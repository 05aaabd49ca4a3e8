from django.urls import path

from checkout_site.console import views as console

urlpatterns = [
    path(
        "control/services/<str:name>/stop",
        console.control_service,
        {"action": "stop"},
        name="control_stop",
    ),
    path(
        "control/services/<str:name>/start",
        console.control_service,
        {"action": "start"},
        name="control_start",
    ),
    path("control/queues", console.control_queues, name="control_queues"),
    path("control/levers", console.control_levers, name="control_levers"),
    path("control/faults", console.control_faults, name="control_faults"),
    path("control/faults/<int:fault_id>", console.control_fault, name="control_fault"),
    path("control/ledger", console.control_ledger, name="control_ledger"),
    path("orders/<int:order_id>/rerun", console.order_rerun, name="order_rerun"),
    path("services/status", console.service_status, name="service_status"),
    path("orders/<int:order_id>/record", console.order_record, name="order_record"),
    path("metrics", console.metrics, name="metrics"),
    path("console/", console.console_home, name="console"),
    path("console/faults", console.console_fault_add, name="console_fault_add"),
    path(
        "console/faults/<int:fault_id>/off",
        console.console_fault_remove,
        name="console_fault_remove",
    ),
    path("console/reset", console.console_reset, name="console_reset"),
    path("console/events/", console.console_deliveries, name="console_events"),
    path("console/dead-letters/", console.console_dead_letters, name="console_dead_letters"),
    path(
        "console/dead-letters/redrive",
        console.console_dead_letters_redrive,
        name="console_dead_letters_redrive",
    ),
    path("console/topology/", console.console_topology, name="console_topology"),
    path("console/schemas.json", console.console_schemas_json, name="console_schemas"),
    path("console/orders/", console.console_orders, name="console_orders"),
    path("console/api/state", console.console_state, name="console_api_state"),
    path("console/api/workers", console.console_workers, name="console_api_workers"),
    path("console/api/metrics", console.console_metrics, name="console_api_metrics"),
    path("console/api/events", console.console_events, name="console_api_events"),
]
