from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "services.inventory"
    label = "inventory"
    verbose_name = "Inventory service"
