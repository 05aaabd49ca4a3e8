from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from checkout_site.login_throttle import ThrottledAdminAuthenticationForm
from checkout_site.views import healthz, readyz

admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", include("orders.urls")),
    path("", include("checkout_site.console.urls")),
]
if settings.BENCH_MINIMAL_WRITE:
    urlpatterns.append(path("bench/minimal-write", include("bench.minimal_write")))
