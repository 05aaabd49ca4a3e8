from services.bus import registry


class NotificationConfig(registry.SubscriberConfig):
    name = "services.notification"
    label = "notification"
    verbose_name = "Notification service"
    handlers = "services.notification.handlers"
    short = "notify"
