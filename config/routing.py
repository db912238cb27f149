from django.urls import re_path

from dashboard.consumers import DashboardConsumer
from instances.consumers import ScanQrCodeConsumer

websocket_urlpatterns = [
    re_path(r"^ws/dashboard/(?:instances/(?P<instance_id>\d+)/)?$", DashboardConsumer.as_asgi()),
    # The method segment is matched case-insensitively inside the consumer.
    re_path(
        r"^(?:ws/)?waInstance(?P<id_instance>\d+)/(?P<method>[^/]+)/(?P<token>[^/]+)/?$",
        ScanQrCodeConsumer.as_asgi(),
    ),
]
