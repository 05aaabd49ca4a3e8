from services.bus import registry


class PaymentConfig(registry.SubscriberConfig):
    name = "services.payment"
    label = "payment"
    verbose_name = "Payment service"
    handlers = "services.payment.handlers"
    short = "pay"
