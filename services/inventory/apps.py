from services.bus import registry


class InventoryConfig(registry.SubscriberConfig):
    name = "services.inventory"
    label = "inventory"
    verbose_name = "Inventory service"
    handlers = "services.inventory.handlers"
    short = "stock"
