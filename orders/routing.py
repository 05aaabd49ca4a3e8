from django.urls import path

from orders import consumers

websocket_urlpatterns = [
    path("ws/events/", consumers.EventFeedConsumer.as_asgi()),
    path("ws/orders/<int:order_id>/", consumers.OrderTimelineConsumer.as_asgi()),
]
