"""What engines report: typed events that go into the one sink (``engines.sink``).

An engine (a session in a runner, a child process, a webhook endpoint) builds these
from what WhatsApp told it and hands them to ``engines.sink.emit``; the product's
apps (journals, messaging, statuses) subscribe to the kinds they turn into journal
rows, notifications and status changes. Nothing here knows about those apps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from engines.contract import QrCode


@dataclass(frozen=True)
class MessageEvent:
    """A message the engine saw: received (``incoming``) or sent from the phone
    or another linked device (``outgoing``)."""

    direction: str
    chat_id: str
    id_message: str
    sender: str
    message_data: dict[str, Any]
    timestamp: datetime
    sender_name: str = ""
    chat_name: str = ""
    sender_contact_name: str = ""

    @property
    def type_message(self) -> str:
        return str(self.message_data["typeMessage"])


@dataclass(frozen=True)
class StateEvent:
    state: str
    timestamp: datetime


@dataclass(frozen=True)
class CallEvent:
    """A call offer, then its outcome: pickUp, hungUp or declined.

    ``direction`` ``outgoing`` is a call this account made (journal only: GREEN-API
    has no notification for it). ``ended`` marks the hang-up of an answered call,
    which only sets the journal's ``duration``: the two notifications of a call are
    the offer and its outcome."""

    id_call: str
    chat_id: str
    status: str
    timestamp: datetime
    direction: str = "incoming"
    duration: int | None = None
    ended: bool = False


@dataclass(frozen=True)
class BlockEvent:
    chat_id: str
    timestamp: datetime
    chat_state: str = "blocked"


@dataclass(frozen=True)
class GroupEvent:
    """The account joined a group or its subject changed: the group chat is in the
    account's chat list under ``subject``. GREEN-API sends no notification for it
    (API.md §10.2 has no group type); the journals record it."""

    chat_id: str
    subject: str
    timestamp: datetime


ReceiptStatus = Literal["delivered", "read", "played", "failed"]


@dataclass(frozen=True)
class ReceiptEvent:
    """The other side's device got (``delivered``), read or played one of the
    messages this instance sent through the API (``id_message`` is ours), or the
    network gave up on it after accepting it (``failed``, with why in
    ``description``: the Cloud API reports such failures by webhook)."""

    id_message: str
    status: ReceiptStatus
    timestamp: datetime
    description: str = ""


@dataclass(frozen=True)
class StatusViewEvent:
    """A viewer's device got or viewed one of this instance's statuses."""

    id_message: str
    viewer: str  # chat id of the viewer
    status: Literal["delivered", "read"]
    timestamp: datetime


@dataclass(frozen=True)
class QrEvent:
    """A new QR code to scan (codes rotate): the REST ``qr`` method, the
    ``scanqrcode`` socket and the cabinet show the newest."""

    qr: QrCode
    timestamp: datetime


@dataclass(frozen=True)
class PairingCodeEvent:
    """WhatsApp issued a pairing code for ``phone`` (getAuthorizationCode)."""

    code: str
    phone: str
    timestamp: datetime


@dataclass(frozen=True)
class HistoryChat:
    """A chat as the phone's history sync describes it."""

    chat_id: str
    name: str = ""
    archived: bool = False
    last_activity: datetime | None = None


@dataclass(frozen=True)
class HistoryEvent:
    """Earlier messages synced from the phone (on pairing with
    enableMessagesHistory, or a sandbox's seeded history): journal rows and chat
    list entries only, no notifications (GREEN-API sends none for history). ``read``:
    the phone had already seen them."""

    messages: tuple[MessageEvent, ...]
    timestamp: datetime
    chats: tuple[HistoryChat, ...] = ()
    read: bool = True


@dataclass(frozen=True)
class DisappearingEvent:
    """The chat's disappearing-messages timer is now ``expiration`` seconds (0:
    off), set on this device, another device of the account or by the other side
    (WhatsApp applies a timer to both sides of the chat)."""

    chat_id: str
    expiration: int
    timestamp: datetime


@dataclass(frozen=True)
class ExpiredEvent:
    """A message of a chat with a disappearing timer expired: it is gone from the
    chat on every device (no notification; WhatsApp shows nothing in its place)."""

    chat_id: str
    id_message: str
    timestamp: datetime


# Every event an engine may emit.
EngineEvent = (
    MessageEvent
    | ReceiptEvent
    | StateEvent
    | CallEvent
    | BlockEvent
    | GroupEvent
    | StatusViewEvent
    | QrEvent
    | PairingCodeEvent
    | HistoryEvent
    | DisappearingEvent
    | ExpiredEvent
)


# --- The product's own events -------------------------------------------------------
# No engine reports these: the send path (messaging) tells what became of API sends
# through the same sink, so it never imports the apps that record them (journals
# turns them into notifications and chat changes, statuses into status audiences).


@dataclass(frozen=True)
class ApiMessageEvent:
    """A message we sent through the API left the engine (outgoingAPIMessageReceived)."""

    chat_id: str
    id_message: str
    message_data: dict[str, Any]
    timestamp: datetime
    chat_name: str = ""


@dataclass(frozen=True)
class StatusEvent:
    """An outgoing message's status changed (outgoingMessageStatus)."""

    chat_id: str
    id_message: str
    status: str
    timestamp: datetime
    send_by_api: bool = True
    description: str = ""


@dataclass(frozen=True)
class QuotaEvent:
    quota_data: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None


@dataclass(frozen=True)
class SendReport:
    """One instance's API sends in one status transaction, in order: what left the
    engine and each status change (one batch of notifications)."""

    events: tuple[ApiMessageEvent | StatusEvent, ...]


@dataclass(frozen=True)
class StatusPostedEvent:
    """The engine posted one of our statuses (``id_message``) to ``audience``."""

    id_message: str
    audience: tuple[str, ...]
    timestamp: datetime


@dataclass(frozen=True)
class SendQueuedEvent:
    """A send method queued a message to ``chat_id`` (inside its transaction): the
    chat is archived with ``archiveChat``, read with markIncomingMessagesReadedOnReply."""

    chat_id: str
    archive_chat: bool
    mark_read: bool


ProductEvent = ApiMessageEvent | StatusEvent | QuotaEvent | SendReport | StatusPostedEvent | SendQueuedEvent

# Everything that travels the sink.
SinkEvent = EngineEvent | ProductEvent
