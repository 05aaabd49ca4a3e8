from django.apps import AppConfig


class PaymentConfig(AppConfig):
    name = "services.payment"
    label = "payment"
    verbose_name = "Payment service"
