"""One settings module, read from the environment, with local defaults (see .env.example)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
import dj_email_url
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from checkout_site.env import envbool, envint, envlist, envstr, envurl, redis_namespace

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = envbool("DJANGO_DEBUG", True)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-in-production-0123456789"
SECRET_KEY = envstr("DJANGO_SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false")

# Django's test set-up adds "testserver" for its test client; no deployment needs it.
ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "orders",
    "services.bus",
    "checkout_site.console",
    "services.payment",
    "services.inventory",
    "services.notification",
    "services.loyalty",
]

MIDDLEWARE = [
    "checkout_site.tracing.RequestSpanMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "checkout_site.csp.ContentSecurityPolicyMiddleware",
    "checkout_site.body_limit.BodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# No inline script anywhere; sockets to this site (ws: and wss:, which 'self' does not cover in
# every browser); inline style attributes only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; connect-src 'self' ws: wss:; "
    "img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)

ROOT_URLCONF = "checkout_site.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "checkout_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "checkout_site.console.context.bus_status",
            ],
        },
    },
]

# --- Database: SQLite by default, PostgreSQL when DATABASE_URL says so -------------------------
DATABASE_URL = envurl(
    "DATABASE_URL",
    f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql", "pgsql"),
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's, with a web process's connections reused between request threads.
    DATABASES["default"]["ENGINE"] = "checkout_site.db.sqlite3"
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # Several processes (web, worker, relay) write to one file: WAL lets readers go on while
        # one writes, and IMMEDIATE takes the write lock at BEGIN, so two writers queue up
        # instead of failing with "database is locked" when one upgrades a read lock.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}
if _test_db_name := envstr("DJANGO_TEST_DB_NAME", ""):
    # Lets several checkouts of the project run their suites on one PostgreSQL side by side.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = _test_db_name
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: the channel layer, and the Celery broker unless CELERY_BROKER_URL names another -----
REDIS_URL = envurl("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss", "unix"))
CELERY_BROKER_URL = envurl(
    "CELERY_BROKER_URL", REDIS_URL, schemes=("redis", "rediss", "amqp", "amqps", "unix")
)

# What this deployment names in Redis (channel-layer groups, counters) starts with this, so two
# deployments sharing one Redis server never hear each other (pub/sub ignores the database
# number). Set it to share one Redis database between deployments: then the Celery queues on a
# Redis broker are prefixed with it too.
CHECKOUT_NAMESPACE = envstr("CHECKOUT_NAMESPACE", "") or redis_namespace(REDIS_URL)

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The rate limiter's counters (orders/ratelimit.py) must be shared by every process.
ORDER_RATE_REDIS_URL = REDIS_URL

# Redis pub/sub: a group message is one PUBLISH, and each daphne process subscribes once per
# group, and the feed group's one member in it hands each message to every feed socket in one
# pass (orders/fanout.py). The list-based layer (channels_redis.core) did
# four round trips per group send, carried every member's channel name in each message, and
# spun up two tasks per socket per message in the receiving process: with 1,000 feed sockets it
# fell behind by tens of seconds (README, Performance). Pub/sub does not keep a message for a
# socket that is gone; pages never relied on that: they catch up from the log by ``seq``.
# A process's pub/sub connection can die while idle (Redis restarted, no socket subscribed):
# redis-py then finds out on the next SUBSCRIBE or PUBLISH, and with no retry that page's
# connect (or that broadcast) failed. With one, it reconnects, subscribes again to what it
# had, and sends the command. When the receive loop reconnects it at the same moment, one of
# the two fails; checkout_site/channel_layer.py then drops the connection and tries again.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "checkout_site.channel_layer.CheckoutChannelLayer",
        "CONFIG": {
            "hosts": [
                {"address": REDIS_URL, "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 3)}
            ],
            "prefix": CHECKOUT_NAMESPACE,
        },
    }
}

# --- Checkout behaviour --------------------------------------------------------------------------
ORDER_MAX_QUANTITY = envint("ORDER_MAX_QUANTITY", 10, minimum=1)
ORDER_BODY_MAX_BYTES = 16 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = ORDER_BODY_MAX_BYTES
# How long an order may take to reach SHIPPED or CANCELLED before it counts as stuck.
ORDER_DEADLINE_SECONDS = envint("ORDER_DEADLINE_SECONDS", 120, minimum=1)
# The relay sends outbox rows that stayed unsent this long after commit (broker down, crash).
OUTBOX_RELAY_AFTER_SECONDS = envint("OUTBOX_RELAY_AFTER_SECONDS", 2, minimum=0)
DELIVERY_MAX_RETRIES = envint("DELIVERY_MAX_RETRIES", 5, minimum=0)
# The console's levers that give up a guarantee (idempotency off, at-most-once delivery) are
# refused (409) when DEBUG is off, unless this says the deployment is a demo.
CHECKOUT_UNSAFE_LEVERS = envbool("CHECKOUT_UNSAFE_LEVERS", False)
# /metrics answers staff sessions, and Prometheus when it sends "Authorization: Bearer <this>".
METRICS_TOKEN = envstr("METRICS_TOKEN", "")
# The reconciler (run by the relay) sends again an event a subscriber has not handled this long
# after it was stored: the broker lost it (Redis restarted) or a killed worker held it.
RECONCILE_AFTER_SECONDS = envint("RECONCILE_AFTER_SECONDS", 30, minimum=1)
RECONCILE_INTERVAL_SECONDS = envint("RECONCILE_INTERVAL_SECONDS", 5, minimum=1)
# Older events are no longer looked at, so a pass stays cheap however long the log grows.
# A service whose queue is longer than this is not sent copies: what it misses is likely queued.
RECONCILE_MAX_QUEUE = envint("RECONCILE_MAX_QUEUE", 50, minimum=0)
RECONCILE_HORIZON_SECONDS = envint("RECONCILE_HORIZON_SECONDS", 24 * 3600, minimum=60)
# POST /orders and /orders/sync per client (IP address) per window: one a second, which no
# shopper reaches. The benchmark and the test suite set their own, far higher.
ORDER_RATE_LIMIT = envint("ORDER_RATE_LIMIT", 60, minimum=0)
ORDER_RATE_WINDOW_SECONDS = envint("ORDER_RATE_WINDOW_SECONDS", 60, minimum=1)
# Failed staff sign-ins for one username from one address, then a wait (login_throttle.py).
ADMIN_LOGIN_MAX_FAILURES = envint("ADMIN_LOGIN_MAX_FAILURES", 5, minimum=1)
ADMIN_LOGIN_WINDOW_SECONDS = envint("ADMIN_LOGIN_WINDOW_SECONDS", 15 * 60, minimum=1)
# The benchmark's floor for POST /orders (bench/minimal_write.py), served only by the stack the
# benchmark starts (bench/stack.py); a deployment never routes it.
BENCH_MINIMAL_WRITE = envbool("BENCH_MINIMAL_WRITE", False)

# --- Email: console by default; EMAIL_URL (smtp://user:pass@host:587?tls=True) for real ----------
_email = dj_email_url.parse(envstr("EMAIL_URL", "console:"))
if "EMAIL_BACKEND" not in _email:
    raise ImproperlyConfigured(
        "EMAIL_URL must start with one of: " + ", ".join(f"{s}:" for s in dj_email_url.SCHEMES)
    )
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"] or None
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Checkout Live <shop@checkout.local>")

# --- Celery: the event bus (see services/bus) ---------------------------------------------------
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# At least once: a message is acked only after its handler committed, and a task whose worker
# process died is handed back to the broker instead of being counted as done.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# With acks_late on Redis, a prefetch window of 1 fills as soon as one task runs, and the worker
# then waits for kombu's 1 s poll timeout before it reads again (celery issue 4378). A window of
# a few messages per process keeps the next BRPOP armed, so an idle hop costs milliseconds.
CELERY_WORKER_PREFETCH_MULTIPLIER = envint("CELERY_PREFETCH_MULTIPLIER", 4, minimum=1)
# A message taken but not acked is given back after this long (worker killed with -9). Handlers
# take milliseconds; 60 s is long enough that a slow handler is not run twice by accident, and
# short enough that a lost message comes back within a demo. Retries use countdowns far below it.
#
# On Redis, kombu emulates acks: it writes each message it hands out to an unacked hash and
# removes it at the ack, two MULTI/EXEC round trips per delivery (0.3-0.5 ms of a 3 ms delivery),
# so a message a killed worker held comes back after the visibility timeout. Here that
# guarantee is the reconciler's (services/bus/reconciler.py): an event a subscriber has not
# handled RECONCILE_AFTER_SECONDS after it was stored is sent again, before the visibility
# timeout would have. So the emulation is off, and the messages a worker holds are kept in its
# memory: acked there, and put back in their queues when it stops (or its child dies). A worker
# killed with -9 loses what it held, and the reconciler sends it again. On RabbitMQ acks are the
# broker's own and this changes nothing.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "ack_emulation": envbool("CELERY_ACK_EMULATION", False),
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 60, minimum=5),
    "socket_connect_timeout": 3,
    "socket_timeout": 10,
}
if envstr("CHECKOUT_NAMESPACE", "") and CELERY_BROKER_URL.startswith(("redis", "unix")):
    # Deployments that share one Redis database keep their queues apart by name. (On their own
    # databases the queues are apart already, and kombu prefixes its broadcasts with the number.)
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = f"{CHECKOUT_NAMESPACE}:"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_SEND_TASK_EVENTS = envbool("CELERY_SEND_EVENTS", False)
# Celery's Django fix-up closes the database connection before and after every task unless this
# is set; checkout_site/celery.py closes only the connections Django would (failed or too old).
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Static files: served by daphne through WhiteNoise, no separate server ----------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "/admin/login/"

# Error pages and error mail mask payment tokens everywhere, DEBUG on or off.
DEFAULT_EXCEPTION_REPORTER = "checkout_site.error_reports.TokenSafeExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "checkout_site.error_reports.TokenSafeExceptionReporterFilter"

if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("DJANGO_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# plain: text lines; json: one JSON object per line. Either carries the trace id of the order.
LOG_FORMAT = envstr("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"trace": {"()": "checkout_site.logs.TraceFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s%(trace)s"},
        "json": {"()": "checkout_site.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["trace"],
        }
    },
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}
