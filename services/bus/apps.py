from django.apps import AppConfig


class BusConfig(AppConfig):
    name = "services.bus"
    label = "bus"
    verbose_name = "Event bus"

    def ready(self) -> None:
        # Connects the worker signals that keep a stopped service stopped across restarts.
        from services.bus import control  # noqa: F401
