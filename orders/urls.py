from django.urls import path

from orders import pages, views

urlpatterns = [
    path("", pages.shop, name="shop"),
    path("compare", pages.compare, name="compare"),
    path("orders", views.orders_create, name="orders_create"),
    path("orders/sync", views.orders_create_sync, name="orders_create_sync"),
    path("orders/<int:order_id>", views.order_detail, name="order_detail"),
    path("products", views.products_list, name="products_list"),
    path("openapi.json", views.openapi_json, name="openapi_json"),
]
