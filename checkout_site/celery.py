"""The Celery app: the transport of the event bus. Tasks live in services/bus/tasks.py."""

from __future__ import annotations

import os

from celery import Celery

from checkout_site.broker_transport import transport_install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "checkout_site.settings")

# Before the app makes a connection: a worker must survive Redis going away (see the module).
transport_install()
app = Celery("checkout_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["services.bus"])
