from django.contrib import admin
from django.urls import include, path

from checkout_site.views import healthz, readyz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", include("orders.urls")),
    path("", include("checkout_site.console.urls")),
]
