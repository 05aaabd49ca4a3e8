from django.apps import AppConfig


class BusConfig(AppConfig):
    name = "services.bus"
    label = "bus"
    verbose_name = "Event bus"
