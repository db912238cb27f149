"""The method registry: every GREEN-API method name, its verb, section and rate limit.

This one list drives routing (``instances.urls.method``), case-insensitive method
lookup (``instances.middleware``), rate limits (``instances.ratelimit``), the OpenAPI
schema and the cabinet's API console. Views are bound to names at URL-conf time, so
``implemented()`` lists exactly the methods a server answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.urls import get_resolver

if TYPE_CHECKING:
    from rest_framework.views import APIView


@dataclass(frozen=True)
class MethodSpec:
    """A wire method. ``verbs`` are the accepted HTTP verbs (the first is canonical)."""

    name: str
    verbs: tuple[str, ...]
    rate_limit: float | None  # requests per second per instance; None = unpublished
    section: str
    status: str  # current | beta | deprecated | removed | sdk-only | limited | relay
    host: str  # api | media | partner | ws

    @property
    def verb(self) -> str:
        return self.verbs[0]


M = MethodSpec

METHODS: tuple[MethodSpec, ...] = (
    # 9.1 Account
    M("getSettings", ("GET",), 1, "account", "current", "api"),
    M("setSettings", ("POST",), 1, "account", "current", "api"),
    M("getStateInstance", ("GET",), 1, "account", "current", "api"),
    M("getStatusInstance", ("GET",), 1, "account", "deprecated", "api"),
    M("reboot", ("GET",), 1, "account", "current", "api"),
    M("logout", ("GET",), 1, "account", "current", "api"),
    M("qr", ("GET",), 3, "account", "current", "api"),
    M("scanqrcode", ("WS",), 1, "account", "current", "ws"),
    M("getAuthorizationCode", ("POST",), None, "account", "current", "api"),
    M("setProfilePicture", ("POST",), 1, "account", "current", "api"),
    M("getWaSettings", ("GET",), 1, "account", "current", "api"),
    M("updateApiToken", ("GET",), None, "account", "current", "api"),
    M("getStateInstanceHistory", ("GET",), None, "account", "sdk-only", "api"),
    # The docs show GET with a JSON body, the console client POSTs: accept both.
    M("startAuthorization", ("POST", "GET"), None, "account", "limited", "api"),
    M("sendAuthorizationCode", ("POST",), None, "account", "limited", "api"),
    M("setSystemProxy", ("GET",), None, "account", "removed", "api"),
    # Relay extension (every engine): the session's honest health.
    M("getSessionHealth", ("GET",), 1, "account", "relay", "api"),
    # 9.2 Sending
    M("sendMessage", ("POST",), 50, "sending", "current", "api"),
    M("sendPoll", ("POST",), 50, "sending", "current", "api"),
    M("sendFileByUpload", ("POST",), 50, "sending", "current", "media"),
    M("sendFileByUrl", ("POST",), 50, "sending", "current", "api"),
    M("uploadFile", ("POST",), None, "sending", "current", "media"),
    M("sendLocation", ("POST",), 50, "sending", "current", "api"),
    M("sendContact", ("POST",), 50, "sending", "current", "api"),
    M("forwardMessages", ("POST",), 50, "sending", "current", "api"),
    M("sendInteractiveButtons", ("POST",), None, "sending", "beta", "api"),
    M("sendInteractiveButtonsReply", ("POST",), None, "sending", "beta", "api"),
    M("sendTyping", ("POST",), None, "sending", "beta", "api"),
    M("sendButtons", ("POST",), 50, "sending", "deprecated", "api"),
    M("sendTemplateButtons", ("POST",), 50, "sending", "deprecated", "api"),
    M("sendListMessage", ("POST",), 50, "sending", "deprecated", "api"),
    M("sendLink", ("POST",), 50, "sending", "deprecated", "api"),
    # Removed by GREEN-API; Relay answers it on the cloud engine (Meta's templates).
    M("sendTemplate", ("POST",), 50, "sending", "removed", "api"),
    # Relay extension (cloud engine): react to a message.
    M("sendReaction", ("POST",), 50, "sending", "relay", "api"),
    # 9.3 Receiving
    M("receiveNotification", ("GET",), 100, "receiving", "current", "api"),
    M("deleteNotification", ("DELETE",), 100, "receiving", "current", "api"),
    M("downloadFile", ("POST",), 5, "receiving", "current", "api"),
    # 9.4 Journals
    M("getChatHistory", ("POST",), 1, "journals", "current", "api"),
    M("getMessage", ("POST",), 10, "journals", "current", "api"),
    M("lastIncomingMessages", ("GET",), 1, "journals", "current", "api"),
    M("lastOutgoingMessages", ("GET",), 1, "journals", "current", "api"),
    M("lastIncomingCalls", ("GET",), None, "journals", "beta", "api"),
    M("lastOutgoingCalls", ("GET",), None, "journals", "beta", "api"),
    # 9.5 Queues
    M("showMessagesQueue", ("GET",), 1, "queues", "current", "api"),
    M("clearMessagesQueue", ("GET",), 1, "queues", "current", "api"),
    M("getMessagesCount", ("GET",), None, "queues", "beta", "api"),
    M("getWebhooksCount", ("GET",), None, "queues", "beta", "api"),
    M("clearWebhooksQueue", ("DELETE",), None, "queues", "beta", "api"),
    # 9.6 Groups
    M("createGroup", ("POST",), 1, "groups", "current", "api"),
    M("updateGroupName", ("POST",), 1, "groups", "current", "api"),
    M("getGroupData", ("POST",), 1, "groups", "current", "api"),
    M("addGroupParticipant", ("POST",), 10, "groups", "current", "api"),
    M("removeGroupParticipant", ("POST",), 10, "groups", "current", "api"),
    M("setGroupAdmin", ("POST",), 10, "groups", "current", "api"),
    M("removeAdmin", ("POST",), 10, "groups", "current", "api"),
    M("setGroupPicture", ("POST",), 1, "groups", "current", "api"),
    M("leaveGroup", ("POST",), 10, "groups", "current", "api"),
    M("updateGroupSettings", ("POST",), None, "groups", "beta", "api"),
    # 9.7 Statuses
    M("sendTextStatus", ("POST",), 5, "statuses", "beta", "api"),
    M("sendVoiceStatus", ("POST",), 5, "statuses", "beta", "api"),
    M("sendMediaStatus", ("POST",), 5, "statuses", "beta", "api"),
    M("deleteStatus", ("POST",), 10, "statuses", "beta", "api"),
    M("getStatusStatistic", ("GET",), 1, "statuses", "beta", "api"),
    M("getIncomingStatuses", ("GET",), 1, "statuses", "beta", "api"),
    M("getOutgoingStatuses", ("GET",), 1, "statuses", "beta", "api"),
    # 9.8 Read marks
    M("readChat", ("POST",), 10, "marks", "current", "api"),
    # 9.9 Service methods
    M("checkWhatsapp", ("POST",), 10, "service", "current", "api"),
    M("getAvatar", ("POST",), 10, "service", "current", "api"),
    M("getAvatarAsync", ("POST",), 10, "service", "removed", "api"),
    M("getContacts", ("GET",), 1, "service", "current", "api"),
    # GET in the 2023 docs, POST now: accept both.
    M("getContactInfo", ("POST", "GET"), 1, "service", "current", "api"),
    M("deleteMessage", ("POST",), 10, "service", "current", "api"),
    M("editMessage", ("POST",), None, "service", "beta", "api"),
    M("archiveChat", ("POST",), 10, "service", "current", "api"),
    M("unarchiveChat", ("POST",), 10, "service", "current", "api"),
    M("setDisappearingChat", ("POST",), 1, "service", "current", "api"),
    M("getChats", ("GET",), 1, "service", "current", "api"),
    # 9.10 Contacts
    M("addContact", ("POST",), None, "contacts", "current", "api"),
    M("editContact", ("POST",), None, "contacts", "current", "api"),
    M("deleteContact", ("POST",), None, "contacts", "current", "api"),
    # 9.11 Device
    M("getDeviceInfo", ("GET",), 1, "device", "deprecated", "api"),
    # 9.12 Partner
    M("getInstances", ("GET",), None, "partner", "current", "partner"),
    M("createInstance", ("POST",), None, "partner", "current", "partner"),
    M("deleteInstanceAccount", ("POST",), None, "partner", "current", "partner"),
    # 9.13 VoIP (beta, SDK-only)
    M("callsState", ("GET",), None, "calls", "sdk-only", "api"),
    M("callsGetIceServers", ("GET",), None, "calls", "sdk-only", "api"),
    M("callsDial", ("POST",), None, "calls", "sdk-only", "api"),
    M("callsAccept", ("POST",), None, "calls", "sdk-only", "api"),
    M("callsReject", ("POST",), None, "calls", "sdk-only", "api"),
    M("callsHangUp", ("POST",), None, "calls", "sdk-only", "api"),
    M("callsRtc", ("WS",), None, "calls", "sdk-only", "ws"),
)

BY_NAME: dict[str, MethodSpec] = {m.name: m for m in METHODS}
BY_LOWER: dict[str, MethodSpec] = {m.name.lower(): m for m in METHODS}

# name -> view class, filled by instances.urls.method() when URL confs load.
_VIEWS: dict[str, type[APIView]] = {}


def bind(name: str, view: type[APIView]) -> MethodSpec:
    """Attach a view to a method name; fails loudly on an unknown name."""
    spec = BY_NAME[name]
    _VIEWS[name] = view
    return spec


def canonical(segment: str) -> str | None:
    """The canonical spelling of a case-insensitive method segment, or None."""
    spec = BY_LOWER.get(segment.lower())
    return spec.name if spec else None


def implemented() -> list[tuple[MethodSpec, type[APIView]]]:
    """Methods this server answers, in catalogue order (loads the URL conf)."""
    get_resolver().url_patterns  # noqa: B018 - importing URL confs binds views
    return [(m, _VIEWS[m.name]) for m in METHODS if m.name in _VIEWS]
