"""Micro-benchmarks of single steps, each runnable as ``python -m bench.micro.<name>``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from checkout_site.embedded_redis import EmbeddedRedis


@contextmanager
def django_on_embedded_redis() -> Iterator[None]:
    """Django set up on a fresh SQLite file and an embedded Redis, which stops on the way out."""
    redis = EmbeddedRedis().start()
    os.environ.update(
        REDIS_URL=redis.url,
        DJANGO_SETTINGS_MODULE="checkout_site.settings",
        DATABASE_URL=f"sqlite:///{tempfile.mkdtemp()}/micro.sqlite3",
    )
    os.environ.pop("CELERY_BROKER_URL", None)
    try:
        import django

        django.setup()
        yield
    finally:
        redis.stop()
