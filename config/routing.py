from django.urls import re_path

from instances.consumers import ScanQrCodeConsumer

websocket_urlpatterns = [
    # The method segment is matched case-insensitively inside the consumer.
    re_path(
        r"^(?:ws/)?waInstance(?P<id_instance>\d+)/(?P<method>[^/]+)/(?P<token>[^/]+)/?$",
        ScanQrCodeConsumer.as_asgi(),
    ),
]
