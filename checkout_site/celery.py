"""The Celery app: the transport of the event bus. Tasks live in services/bus/tasks.py."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "checkout_site.settings")

app = Celery("checkout_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["services.bus"])
