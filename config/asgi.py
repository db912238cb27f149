"""ASGI entry point: Django for HTTP, Channels for WebSockets."""

import os
from typing import Any

from django.core.asgi import get_asgi_application
from twisted.web import http as twisted_http

# Daphne writes the status line from Twisted's table, which lacks 429: clients saw
# "429 Unknown Status". GREEN-API answers "429 Too Many Requests".
twisted_http.RESPONSES.setdefault(429, b"Too Many Requests")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from instances.edge import EdgeGuard  # noqa: E402
from journals.longpoll_edge import receive_notification  # noqa: E402
from messaging.fastlane import FastLane  # noqa: E402


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI lifespan: nothing to set up (connections open lazily), but servers that
    run lifespan (uvicorn ``--lifespan on``, granian) must get an answer, not an error
    from the router, so start-up and shutdown are acknowledged."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        "http": FastLane(EdgeGuard(django_asgi_app), receive=receive_notification),
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
        "lifespan": lifespan,
    }
)
