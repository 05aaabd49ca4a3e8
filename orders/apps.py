from services.bus import registry


class OrdersConfig(registry.SubscriberConfig):
    name = "orders"
    verbose_name = "Orders"
    handlers = "orders.handlers"
    title = "order"

    def ready(self) -> None:
        super().ready()
        from orders.live import events_broadcast
        from services.bus import hooks

        # Every committed event goes to the live pages.
        hooks.on_committed(events_broadcast)
