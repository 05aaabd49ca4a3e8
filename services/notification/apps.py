from django.apps import AppConfig


class NotificationConfig(AppConfig):
    name = "services.notification"
    label = "notification"
    verbose_name = "Notification service"
