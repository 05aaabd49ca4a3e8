from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The operator's console. It reads every service and hooks its tools into the bus from
    outside; nothing imports it."""

    name = "checkout_site.console"
    label = "console"
    verbose_name = "Operator's console"

    def ready(self) -> None:
        # Connects the worker signals that keep a stopped service stopped across restarts.
        from checkout_site.console import control, heartbeat  # noqa: F401
        from checkout_site.console.faults import faults_install
        from checkout_site.console.levers import levers_install
        from checkout_site.console.rerun import rerun_install

        faults_install()
        levers_install()
        rerun_install()
