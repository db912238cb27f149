from django.urls import re_path

from dashboard.consumers import DashboardConsumer
from instances.consumers import ScanQrCodeConsumer
from messaging.consumers import CallsRtcConsumer

websocket_urlpatterns = [
    re_path(r"^ws/dashboard/(?:instances/(?P<instance_id>\d+)/)?$", DashboardConsumer.as_asgi()),
    # Method segments are case-insensitive (API.md §1).
    re_path(
        r"^(?:ws/)?waInstance(?P<id_instance>\d+)/(?i:callsrtc)/(?P<token>[^/]+)/?$",
        CallsRtcConsumer.as_asgi(),
    ),
    # Any other method reaches scanqrcode's consumer, which refuses it with 4404.
    re_path(
        r"^(?:ws/)?waInstance(?P<id_instance>\d+)/(?P<method>[^/]+)/(?P<token>[^/]+)/?$",
        ScanQrCodeConsumer.as_asgi(),
    ),
]
