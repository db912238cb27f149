"""The transport contract: what every engine (emulator, waweb, cloud) provides.

Transports do I/O only. They never write our domain models, enqueue tasks or push
websocket events; services do that with what transports return. A transport object
is bound to one instance (``registry.get_transport(instance)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

QrType = Literal["qrCode", "alreadyLogged", "error"]


class TransportError(Exception):
    """An engine failure. ``permanent`` means a retry cannot help (e.g. logged out)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class NotSupportedYet(TransportError):
    """The engine does not implement this operation (yet)."""

    def __init__(self, operation: str, engine: str) -> None:
        super().__init__(f"{operation} is not supported by the {engine} engine yet", permanent=True)


@dataclass(frozen=True)
class QrCode:
    """A QR code to scan: ``text`` is what the code encodes, ``png_base64`` the image."""

    text: str
    png_base64: str
    window: int  # rotation counter; a new value means a new code


@dataclass(frozen=True)
class Profile:
    """What WhatsApp tells about the linked account."""

    phone: str
    name: str
    avatar_url: str
    lid: str
    device_id: str


class Transport(Protocol):
    """One instance's engine, as web and worker processes see it."""

    engine: str

    def current_qr(self) -> QrCode:
        """The QR code to show now (rotates about every 20 s)."""
        ...

    def request_pairing_code(self, *, phone: str) -> str:
        """Ask WhatsApp for an 8-character pairing code for ``phone``."""
        ...

    def start_registration(self, *, phone: str, method: str) -> str:
        """Start registering ``phone`` by SMS/voice; returns the delivery channel id."""
        ...

    def logout(self, *, phone: str) -> None:
        """Unlink this device from the account."""
        ...

    def reboot(self) -> None:
        """Drop and re-open the engine connection."""
        ...

    def set_profile_picture(self, *, phone: str, data: bytes) -> str:
        """Set the account's picture (JPEG bytes); returns its public URL."""
        ...

    def profile(self, *, phone: str) -> Profile | None:
        """The linked account's profile, or None when it is unknown."""
        ...

    def send_presence(self, *, chat_id: str, milliseconds: int, recording: bool) -> None:
        """Show 'typing…'/'recording…' in a chat for about ``milliseconds``."""
        ...

    def read_chat(self, *, chat_id: str) -> None:
        """Send read receipts for everything received in ``chat_id``."""
        ...

    def send_message(self, payload: OutgoingPayload) -> SendResult:
        """Send one message. Must be idempotent per ``payload.id_message``. Raises
        ``TransportError`` when the engine cannot be reached."""
        ...


SendStatus = Literal["sent", "noAccount", "notInGroup", "failed"]


@dataclass(frozen=True)
class OutgoingPayload:
    """What a transport sends: GREEN-API's typeMessage and its fields.

    ``id_message`` is chosen by us before sending and reused on retries, so an engine
    that already accepted the message (worker crashed before recording it) can
    recognise the retry and not deliver twice."""

    id_message: str
    chat_id: str
    type_message: str
    data: dict[str, object]


@dataclass(frozen=True)
class SendResult:
    """The engine's verdict on one message; ``description`` explains failures."""

    status: SendStatus
    description: str = ""
