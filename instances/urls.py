"""Wire routes: one line per GREEN-API method, bound through the registry."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from instances import api, partner_api, registry


def method(view: Any, *, extra: str = "", trailing_slash: bool = False) -> URLPattern:
    """Route a method view at its canonical name. ``extra`` adds a trailing segment
    (deleteNotification/{token}/{receiptId}); ``trailing_slash`` routes
    ``{token}/`` (the Python SDK's async deleteNotification sends that, with the
    receiptId as the body)."""
    spec = registry.bind(view.wire_name, view)
    suffix = f"/<str:{extra}>" if extra else ("/" if trailing_slash else "")
    # Credentials are in the path, never in cookies: CSRF does not apply to the wire.
    handler = csrf_exempt(view.as_view())
    if spec.host == "partner":
        return path(f"partner/{spec.name}/<str:token>{suffix}", handler, name=spec.name)
    return path(
        f"waInstance<int:id_instance>/{spec.name}/<str:token>{suffix}",
        handler,
        name=spec.name + ("-extra" if extra else "-slash" if trailing_slash else ""),
    )


urlpatterns = [
    method(api.GetSettings),
    method(api.SetSettings),
    method(api.GetStateInstance),
    method(api.GetStatusInstance),
    method(api.Reboot),
    method(api.Logout),
    method(api.Qr),
    method(api.GetAuthorizationCode),
    method(api.SetProfilePicture),
    method(api.GetWaSettings),
    method(api.UpdateApiToken),
    method(api.GetStateInstanceHistory),
    method(api.GetSessionHealth),
    method(api.StartAuthorization),
    method(api.SendAuthorizationCode),
    method(api.SetSystemProxy),
    method(api.GetDeviceInfo),
    method(partner_api.GetInstances),
    method(partner_api.CreateInstance),
    method(partner_api.DeleteInstanceAccount),
]
