"""The instance settings of API.md §7: one list drives storage, getSettings,
setSettings, partner createInstance, the admin and the cabinet form.

Settings live in ``Instance.settings`` (a JSON object keyed by wire names) so a new
GREEN-API flag is one line here, not a migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["flag", "int", "str", "bool"]


@dataclass(frozen=True)
class SettingSpec:
    """One setting: wire name, type, default and whether clients may write it."""

    name: str
    kind: Kind
    default: Any
    help: str
    writable: bool = True
    in_get: bool = True  # returned by getSettings
    min_value: int | None = None
    max_value: int | None = None
    # A Relay extension (GREEN-API has no such setting): returned by getSettings after
    # GREEN-API's own keys, accepted by setSettings, marked as such in docs/api.md.
    relay: bool = False
    # Defaults that differ by engine (engine name → value; others take ``default``).
    # Such a setting is not stored when an instance is created, so an instance that
    # never set it follows its engine's default (Instance.setting).
    engine_defaults: tuple[tuple[str, Any], ...] = ()

    def default_for(self, engine: str) -> Any:
        """The default an instance of ``engine`` gets while it has not set this."""
        return dict(self.engine_defaults).get(engine, self.default)


# Order is the documented getSettings key order; extra keys follow it.
SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("countryInstance", "str", "", "Deprecated; always empty.", writable=True),
    SettingSpec("typeAccount", "str", "", "Deprecated; always empty.", writable=False),
    SettingSpec("webhookUrl", "str", "", "URL that receives notifications by POST. Empty: use receiveNotification polling."),
    SettingSpec("webhookUrlToken", "str", "", "Sent as the Authorization header of webhook requests."),
    SettingSpec("delaySendMessagesMilliseconds", "int", 3000, "Pause between two messages leaving the send queue (ms).", min_value=500, max_value=600_000),
    SettingSpec("markIncomingMessagesReaded", "flag", False, "Mark every incoming message read automatically."),
    SettingSpec("markIncomingMessagesReadedOnReply", "flag", False, "Mark a chat read when you reply to it through the API."),
    SettingSpec("sharedSession", "flag", False, "Deprecated; always no.", writable=False),
    SettingSpec("proxyInstance", "str", "system proxy", "Proxy for the WhatsApp connection: 'system proxy' or ip:port:login:password."),
    SettingSpec("outgoingWebhook", "flag", False, "Notify delivery statuses of sent messages (outgoingMessageStatus)."),
    SettingSpec("outgoingMessageWebhook", "flag", False, "Notify messages sent from the phone (outgoingMessageReceived)."),
    SettingSpec("outgoingAPIMessageWebhook", "flag", False, "Notify messages sent through the API (outgoingAPIMessageReceived)."),
    SettingSpec("incomingWebhook", "flag", False, "Notify incoming messages and files (incomingMessageReceived)."),
    SettingSpec("deviceWebhook", "flag", False, "Deprecated device notifications.", in_get=True),
    SettingSpec("statusInstanceWebhook", "flag", False, "Deprecated socket status notifications."),
    SettingSpec("stateWebhook", "flag", False, "Notify authorization state changes (stateInstanceChanged)."),
    SettingSpec("enableMessagesHistory", "flag", False, "On pairing, sync the phone's earlier messages into the journals."),
    SettingSpec("keepOnlineStatus", "flag", False, "Show the account as online (the phone then gets no sound notifications)."),
    SettingSpec("pollMessageWebhook", "flag", False, "Notify polls and poll votes."),
    SettingSpec("incomingBlockWebhook", "flag", False, "Notify when a chat blocks the account, and quota notifications."),
    SettingSpec("incomingCallWebhook", "flag", False, "Notify incoming calls (incomingCall)."),
    SettingSpec("editedMessageWebhook", "flag", False, "Notify edited messages."),
    SettingSpec("deletedMessageWebhook", "flag", False, "Notify deleted messages."),
    SettingSpec("outgoingCallWebhook", "flag", False, "Record outgoing calls in the journal."),
    SettingSpec("autoTyping", "int", 0, "Show 'typing…' before text sends without typingTime, 60 ms a character times the level (0 = off, 1–4), 1–20 s.", min_value=0, max_value=4),
    SettingSpec("linkPreview", "bool", True, "Default link preview for sendMessage."),
    SettingSpec("enableLidMode", "bool", False, "Report personal chats by the peer's @lid id (sending to it works)."),
    SettingSpec("sendFromUTC", "str", "", "Legacy: start of the UTC sending window (HH:MM)."),
    SettingSpec("sendToUTC", "str", "", "Legacy: end of the UTC sending window (HH:MM)."),
    # Relay extensions: protecting a real WhatsApp number (messaging/pacing.py,
    # docs/engines/waweb.md "Protecting the number"). On by default for waweb only:
    # the emulator is a sandbox, and Meta enforces its own limits on Cloud API numbers.
    SettingSpec("sendJitterPercent", "int", 0, "Relay extension: add a random 0–N % to each pause between sends, so they do not leave at a machine's exact rhythm.", min_value=0, max_value=100, relay=True, engine_defaults=(("waweb", 30),)),
    SettingSpec("newChatsPerHour", "int", 0, "Relay extension: at most N messages an hour to chats with no earlier message either way (0 = no cap); the rest wait in the queue.", min_value=0, max_value=10_000, relay=True, engine_defaults=(("waweb", 20),)),
    SettingSpec("warmUpDailyLimit", "int", 0, "Relay extension: for a newly linked number, at most N messages on its first day, 2N on the second, … (0 = off); the rest wait in the queue.", min_value=0, max_value=100_000, relay=True, engine_defaults=(("waweb", 50),)),
    SettingSpec("warmUpDays", "int", 7, "Relay extension: the number of days the warm-up limit lasts after the number was linked.", min_value=1, max_value=60, relay=True),
)

# GREEN-API's recommended setSettings body (docs, "creating and configuring an
# instance"), without the URL: every notification an integration usually needs.
RECOMMENDED_NOTIFICATIONS: dict[str, str] = {
    "incomingWebhook": "yes",
    "outgoingWebhook": "yes",
    "outgoingMessageWebhook": "yes",
    "outgoingAPIMessageWebhook": "yes",
    "stateWebhook": "yes",
    "pollMessageWebhook": "yes",
    "incomingCallWebhook": "yes",
    "markIncomingMessagesReaded": "no",
    "markIncomingMessagesReadedOnReply": "no",
    "keepOnlineStatus": "no",
}

BY_NAME: dict[str, SettingSpec] = {s.name: s for s in SETTINGS}
WRITABLE: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.writable)


def default_settings() -> dict[str, Any]:
    """Stored defaults for a new instance (every flag off, as GREEN-API does).
    Settings whose default depends on the engine are left out: the instance
    follows its engine's default until it sets them (``SettingSpec.default_for``)."""
    return {s.name: s.default for s in SETTINGS if not s.engine_defaults}


def to_wire(name: str, value: Any) -> Any:
    """Render a stored value the way getSettings shows it (flags as "yes"/"no")."""
    spec = BY_NAME[name]
    if spec.kind == "flag":
        return "yes" if value else "no"
    return value


def from_wire(name: str, value: Any) -> Any:
    """Store a validated wire value (flags become booleans)."""
    spec = BY_NAME[name]
    if spec.kind == "flag":
        return value == "yes"
    return value
