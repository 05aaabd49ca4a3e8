from services.bus import registry


class LoyaltyConfig(registry.SubscriberConfig):
    name = "services.loyalty"
    label = "loyalty"
    verbose_name = "Loyalty service"
    handlers = "services.loyalty.handlers"
    short = "loyal"
    # A service that joins later: it ships subscribed to nothing, until the operator says so.
    subscribed_by_default = ()
