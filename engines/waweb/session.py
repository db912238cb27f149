"""The session process of one waweb account (``manage.py wa_session``): the only code
that talks to whatsmeow.

One process per account, because whatsmeow (through neonize's FFI) can abort the
whole process with a Go panic, and a dial can block every other call for a minute.
The process dies with its runner (``PR_SET_PDEATHSIG``), holds the instance's lease
epoch, and exits as soon as that lease is no longer its own.

Threads: neonize's ``connect()`` blocks for the whole connection, so it runs on a
thread of its own; neonize calls our event callbacks on a Go-created thread, and they
only enqueue. The main thread owns the database: it applies queued events (through
``engines.sink``, every state write fenced by the epoch) and runs the commands the
channel brings, one at a time.

Exit codes tell the supervisor (``engines.waweb.supervisor``) what to do next.
"""

from __future__ import annotations

import base64
import ctypes
import dataclasses
import io
import logging
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

import segno
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from engines import channel, media, sink
from engines.contract import (
    STATUS_BROADCAST,
    CallError,
    GroupRefused,
    OutgoingPayload,
    QrCode,
    TransportError,
)
from engines.events import CallEvent, HistoryEvent, PairingCodeEvent, QrEvent, ReceiptEvent, StatusViewEvent
from engines.waweb import store
from engines.waweb.models import WawebMessage, WawebOriginal, WawebSession
from instances import services
from instances.models import Instance, State

log = logging.getLogger(__name__)

EXIT_STOPPED = 0  # asked to stop (SIGTERM, reboot): restart at once if still leased
EXIT_CRASHED = 1  # anything unexpected: restart with backoff
EXIT_LOGGED_OUT = 3  # the phone removed the device: notAuthorized, no restart
EXIT_REPLACED = 4  # another connection took the account over: back off >= 60 s
EXIT_BANNED = 5  # temporary ban: yellowCard, back off until it expires
EXIT_LEASE_LOST = 6  # the lease is no longer ours: nothing to do
EXIT_QR_TIMEOUT = 7  # nobody scanned within the QR budget: restart for fresh codes
EXIT_CONNECT_FAILED = 8  # the dial failed (network, proxy): restart with backoff

# How often a connected session reads keepOnlineStatus from its row (one small query).
PRESENCE_CHECK_SECONDS = 2.0
# A call that ended this recently still explains callsState's ``idle`` (as the emulator).
CALL_REASON_SECONDS = 60

# WhatsApp's per-participant codes in a group change's answer (GroupRefused reasons).
PARTICIPANT_ERRORS = {403: "forbidden", 404: "not-on-whatsapp", 409: "already-participant", 500: "group-full"}

PR_SET_PDEATHSIG = 1
# Queue entries the session makes itself (not WhatsApp's events)...
OWN_KINDS = frozenset({"dial_failed", "probe_answered", "probe_failed"})
# ...and the ones that prove nothing about the connection carrying traffic.
NO_PROOF_KINDS = frozenset(
    {"dial_failed", "probe_failed", "keep_alive_timeout", "disconnected", "connect_failure", "client_outdated"}
)
QR_BUDGET_SECONDS = 160  # whatsmeow's QR codes: 60 s, then 20 s each, ~160 s in all


def die_with_parent(expected_parent: int | None) -> None:
    """Ask the kernel to SIGKILL this process when its parent (the runner) dies, and
    exit now if it already has (the runner died between fork and here)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        log.warning("waweb session: PR_SET_PDEATHSIG unavailable; relying on the lease check")
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(EXIT_LEASE_LOST)


def render_qr(text: str) -> str:
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=6, border=2)
    return base64.b64encode(buf.getvalue()).decode()


def proxy_url(value: str) -> str:
    """``proxyInstance`` as a proxy URL: ``system proxy`` means ``WAWEB_PROXY_URL``
    (none when empty); ``ip:port:login:password`` an HTTP proxy with those
    credentials; a URL (``socks5://…``) is used as it is."""
    if not value or value == "system proxy":
        return str(settings.WAWEB_PROXY_URL)
    if "://" in value:
        return value
    parts = value.split(":")
    host, port = parts[0], parts[1] if len(parts) > 1 else "80"
    login = parts[2] if len(parts) > 2 else ""
    password = parts[3] if len(parts) > 3 else ""
    auth = f"{login}:{password}@" if login else ""
    return f"http://{auth}{host}:{port}"


class Stop(Exception):
    """The session must end with ``code``."""

    def __init__(self, code: int, why: str = "") -> None:
        super().__init__(why)
        self.code = code


class Session:
    """One account's whatsmeow client, its events and its commands. ``client`` is
    a neonize ``NewClient`` (or an object with its Python surface)."""

    def __init__(self, instance: Instance, epoch: int, runner_id: str, client: Any) -> None:
        self.instance = instance
        self.epoch = epoch
        self.runner_id = runner_id
        self.client = client
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.row, _ = WawebSession.objects.get_or_create(instance_id=instance.pk)
        self.qr_deadline: float | None = None
        self.connected = False
        # Liveness (engines.waweb.health): when traffic was last proven, and
        # whether a probe is out.
        self.proven_at = time.monotonic()
        self.probing = False
        self.commands: dict[str, Callable[[dict[str, Any]], Any]] = {
            "send": self.cmd_send,
            "pair_phone": self.cmd_pair_phone,
            "logout": self.cmd_logout,
            "reboot": self.cmd_reboot,
            "profile": self.cmd_profile,
            "check_whatsapp": self.cmd_check_whatsapp,
            "send_presence": self.cmd_send_presence,
            "get_avatar": self.cmd_get_avatar,
            "contact_info": self.cmd_contact_info,
            "delete_message": self.cmd_delete_message,
            "edit_message": self.cmd_edit_message,
            "set_disappearing": self.cmd_set_disappearing,
            "set_profile_picture": self.cmd_set_profile_picture,
            "create_group": self.cmd_create_group,
            "group_data": self.cmd_group_data,
            "update_group_name": self.cmd_update_group_name,
            "group_participant": self.cmd_group_participant,
            "set_group_picture": self.cmd_set_group_picture,
            "leave_group": self.cmd_leave_group,
            "update_group_settings": self.cmd_update_group_settings,
            "delete_status": self.cmd_delete_status,
            "read_chat": self.cmd_read_chat,
            "contacts": self.cmd_contacts,
            "call_status": self.cmd_call_status,
            "call_reject": self.cmd_call_reject,
        }
        # The incoming call ringing this device (callsState, callsReject): its id, the
        # caller's JID as the CallOffer gave it (reject_call needs it exactly), the
        # chat id; "on-call" once WhatsApp says it was answered (on the phone). Kept
        # in memory: a ringing call outlives no session restart worth remembering.
        self.call: dict[str, Any] | None = None
        # Why the last call ended and when (callsState's ``reason`` for a minute).
        self.call_ended: tuple[str | None, float] | None = None
        self.next_prune = 0.0
        self.history_progress = 100  # getWaSettings' historySyncProgress
        # keepOnlineStatus: whether WhatsApp was last told the account is available
        # (whatsmeow sends no presence by itself, so a connection starts unavailable),
        # and when the setting is next read from the row.
        self.presence_available = False
        self.presence_due = 0.0

    @property
    def fence(self) -> tuple[str, int]:
        return (self.runner_id, self.epoch)

    # --- Wiring neonize's callbacks: they only enqueue ------------------------------

    def install(self) -> None:
        from neonize import events as ev  # why: neonize loads only in the session process

        kinds = (
            ev.ConnectedEv,
            ev.PairStatusEv,
            ev.LoggedOutEv,
            ev.StreamReplacedEv,
            ev.TemporaryBanEv,
            ev.ConnectFailureEv,
            ev.ClientOutdatedEv,
            ev.DisconnectedEv,
            ev.KeepAliveTimeoutEv,
            ev.KeepAliveRestoredEv,
            ev.MessageEv,
            ev.ReceiptEv,
            ev.CallOfferEv,
            ev.CallTerminateEv,
            ev.CallAcceptEv,
            ev.HistorySyncEv,
        )
        for kind in kinds:
            self.client.event(kind)(self._on_event)
        self.client.event.qr(self._on_qr)
        self.client.event.paircode(self._on_paircode)

    def _on_event(self, _client: Any, message: Any) -> None:
        # ``Connected`` -> ``connected``, ``KeepAliveTimeout`` -> ``keep_alive_timeout``
        self.events.put((re.sub(r"(?<!^)(?=[A-Z])", "_", type(message).__name__).lower(), message))

    def _on_qr(self, _client: Any, data: bytes) -> None:
        self.events.put(("qr", data.decode() if isinstance(data, bytes) else str(data)))

    def _on_paircode(self, _client: Any, code: str, connected: bool) -> None:
        self.events.put(("pair_code", (code, connected)))

    # --- Applying events (main thread) ----------------------------------------------

    def pump(self) -> int:
        """Apply every queued event; returns how many. Raises ``Stop`` when one ends
        the session (logged out, replaced, banned)."""
        count = 0
        while True:
            try:
                kind, message = self.events.get_nowait()
            except queue.Empty:
                return count
            if count == 0:
                # The process outlives changes made elsewhere (setSettings, a state
                # the API set): apply this batch against the row as it is now.
                self.instance.refresh_from_db()
            count += 1
            self.stamp(kind)
            self.apply(kind, message)

    def stamp(self, kind: str) -> None:
        """Record when WhatsApp last sent an event (``last_event_at``) and when
        traffic was last proven (``alive_at``: any event but a failure, or an
        answered probe)."""
        now = timezone.now()
        fields = {} if kind in OWN_KINDS else {"last_event_at": now}
        if kind not in NO_PROOF_KINDS:
            fields["alive_at"] = now
            self.proven_at = time.monotonic()
        if fields:
            WawebSession.objects.filter(pk=self.instance.pk).update(**fields)

    def probe_if_due(self) -> None:
        """Ask WhatsApp for a round trip (the blocklist: one small IQ, no effect
        anyone sees) when a connected session has proven no traffic for
        ``WAWEB_PROBE_AFTER_SECONDS``. whatsmeow reports keep-alives only when they
        fail, so a quiet account and a dead connection look alike without it. It
        runs on its own thread (an IQ can wait up to whatsmeow's 75 s timeout); the
        answer comes back through the queue and is stamped by the main loop, so a
        wedged main loop proves nothing either."""
        if not self.connected or self.probing:
            return
        if time.monotonic() - self.proven_at < settings.WAWEB_PROBE_AFTER_SECONDS:
            return
        self.probing = True

        def probe() -> None:
            try:
                self.client.get_blocklist()
            except Exception as exc:  # noqa: BLE001 - neonize's GetBlocklistError, or not connected
                self.events.put(("probe_failed", str(exc)))
            else:
                self.events.put(("probe_answered", None))

        threading.Thread(target=probe, name=f"waweb-probe-{self.instance.pk}", daemon=True).start()

    def on_probe_answered(self, _message: Any) -> None:
        self.probing = False

    def on_probe_failed(self, why: str) -> None:
        self.probing = False
        WawebSession.objects.filter(pk=self.instance.pk).update(last_error=f"liveness probe failed: {why}"[:1000])

    def apply(self, kind: str, message: Any) -> None:
        handler = getattr(self, f"on_{kind}", None)
        if handler is None:
            return
        handler(message)

    def set_state(self, state: str, **fields: Any) -> None:
        services.change_state(self.instance, state, fence=self.fence, **fields)

    def on_qr(self, text: str) -> None:
        if self.qr_deadline is None:
            self.qr_deadline = time.monotonic() + QR_BUDGET_SECONDS
        count = self.row.qr_count + 1
        self.row.qr_count = count
        qr = QrCode(text=text, png_base64=render_qr(text), window=count)
        sink.emit(self.instance, QrEvent(qr=qr, timestamp=timezone.now()))

    def on_pair_code(self, value: tuple[str, bool]) -> None:
        code, connected = value
        if not connected:
            sink.emit(
                self.instance,
                PairingCodeEvent(code=code, phone=self.row.pairing_phone, timestamp=timezone.now()),
            )

    def on_pair_status(self, message: Any) -> None:
        from engines.waweb.translate import device_jid  # why: neonize loads only in the session process

        if message.Error:
            WawebSession.objects.filter(pk=self.instance.pk).update(
                last_error=f"pairing failed: {message.Error}"
            )
            return
        self.row.device_jid = device_jid(message.ID)
        WawebSession.objects.filter(pk=self.instance.pk).update(
            device_jid=self.row.device_jid, qr_text="", qr_png=""
        )

    def on_connected(self, _message: Any) -> None:
        from engines.waweb.translate import (  # why: neonize loads only in the session process
            chat_id,
            device_jid,
        )

        self.connected = True
        self.qr_deadline = None
        self.presence_due = 0.0  # keepOnlineStatus goes out at once on a new connection
        me = self.client.get_me()  # safe now: whatsmeow has a device (before connect it panics)
        jid = device_jid(me.JID)
        WawebSession.objects.filter(pk=self.instance.pk).update(
            device_jid=jid,
            push_name=me.PushName,
            connected=True,
            connected_at=timezone.now(),
            last_error="",
            qr_text="",
            qr_png="",
        )
        self.row.device_jid = jid
        wid = chat_id(me.JID).split(":")[0]
        wid = f"{me.JID.User}@c.us" if me.JID.Server == "s.whatsapp.net" else wid
        self.set_state(State.AUTHORIZED, wid=wid, profile_name=me.PushName)

    def sync_presence(self) -> None:
        """keepOnlineStatus: tell WhatsApp the account is ``available`` while the
        setting is on, and ``unavailable`` once it is turned off (the phone then gets
        its sound notifications again). The setting is read from the row every
        ``PRESENCE_CHECK_SECONDS`` (setSettings applies it live, in another process);
        a failed send is tried again at the next check."""
        now = time.monotonic()
        if now < self.presence_due:
            return
        self.presence_due = now + PRESENCE_CHECK_SECONDS
        stored = Instance.objects.filter(pk=self.instance.pk).values_list("settings", flat=True).first() or {}
        keep = bool(stored.get("keepOnlineStatus", False))
        if keep == self.presence_available:
            return
        from neonize.utils.enum import Presence  # why: neonize loads only in the session process

        try:
            self.client.send_presence(Presence.AVAILABLE if keep else Presence.UNAVAILABLE)
        except Exception as exc:  # noqa: BLE001 - neonize's SendPresenceError, or not connected
            log.warning("waweb session of %s could not send its presence: %s", self.instance.pk, exc)
            return
        self.presence_available = keep

    def on_disconnected(self, _message: Any) -> None:
        # whatsmeow reconnects by itself; count it for the health report.
        self.connected = False
        # A new connection starts unavailable: keepOnlineStatus is sent again on it.
        self.presence_available = False
        self.presence_due = 0.0
        row = WawebSession.objects.filter(pk=self.instance.pk)
        row.update(reconnects=self.row.reconnects + 1, connected=False)
        self.row.reconnects += 1
        if self.instance.state == State.AUTHORIZED:
            self.set_state(State.STARTING)

    def on_keep_alive_timeout(self, _message: Any) -> None:
        self.row.keepalive_failures += 1
        WawebSession.objects.filter(pk=self.instance.pk).update(
            keepalive_failures=self.row.keepalive_failures
        )
        if self.instance.state == State.AUTHORIZED:
            self.set_state(State.SLEEP_MODE)

    def on_keep_alive_restored(self, _message: Any) -> None:
        if self.instance.state == State.SLEEP_MODE:
            self.set_state(State.AUTHORIZED)

    def on_logged_out(self, message: Any) -> None:
        self._forget_device()
        self.set_state(State.NOT_AUTHORIZED, wid="", profile_name="")
        raise Stop(EXIT_LOGGED_OUT, f"logged out (reason {message.Reason})")

    def on_stream_replaced(self, _message: Any) -> None:
        raise Stop(EXIT_REPLACED, "another connection replaced this one")

    def on_temporary_ban(self, message: Any) -> None:
        WawebSession.objects.filter(pk=self.instance.pk).update(
            last_error=f"temporary ban (code {message.Code}, expires in {message.Expire} s)"
        )
        self.set_state(State.YELLOW_CARD)
        raise Stop(EXIT_BANNED, str(message.Expire))

    def on_connect_failure(self, message: Any) -> None:
        WawebSession.objects.filter(pk=self.instance.pk).update(last_error=f"connect failure: {message}")

    def on_client_outdated(self, _message: Any) -> None:
        WawebSession.objects.filter(pk=self.instance.pk).update(
            last_error="WhatsApp refuses this whatsmeow version (client outdated): upgrade neonize"
        )

    def on_message(self, message: Any) -> None:
        from engines.waweb.translate import (  # why: neonize loads only in the session process
            message_event,
            unwrap,
        )

        if unwrap(message.Message).HasField("pollUpdateMessage"):
            self.on_poll_vote(message)
            return
        event = message_event(message, self.instance.wid)
        if event is None:
            return
        if (
            event.direction == "outgoing"
            and WawebMessage.objects.filter(instance_id=self.instance.pk, wa_id=event.id_message).exists()
        ):
            return  # our own API send, echoed back: reported by the send path already
        if event.message_data["typeMessage"] not in ("deletedMessage", "editedMessage", "reactionMessage"):
            # Kept before the event goes out: markIncomingMessagesReaded reads it at once.
            self.keep(message)
        if "fileMessageData" in event.message_data:
            event = dataclasses.replace(event, message_data=self.download(message, event.message_data))
        sink.emit(self.instance, event)

    def on_poll_vote(self, message: Any) -> None:
        """A vote on a poll the session kept (sent through the API, from the phone,
        or received): decrypted with the poll's ``messageSecret`` and reported as
        ``pollUpdateMessage``. A vote on a poll the session never saw (or older than
        the retention), or one that does not decrypt, is logged and skipped."""
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
            Message,  # why: neonize loads only in the session process
        )

        from engines.waweb.translate import (  # why: neonize loads only in the session process
            PollVoteError,
            chat_id,
            message_event,
            poll_vote_data,
            unwrap,
        )

        poll_id = unwrap(message.Message).pollUpdateMessage.pollCreationMessageKey.ID
        kept = WawebOriginal.objects.filter(instance_id=self.instance.pk, wa_id=poll_id).first()
        if kept is None:
            log.info("waweb instance %s: vote %s on a poll it does not know (%s)", self.instance.pk, message.Info.ID, poll_id)
            return
        source = message.Info.MessageSource
        voter = self.instance.wid if source.IsFromMe else chat_id(source.Sender)
        try:
            data = poll_vote_data(message, Message.FromString(bytes(kept.message)), voter)
        except (PollVoteError, ValueError) as exc:
            log.warning("waweb instance %s: vote %s on poll %s skipped: %s", self.instance.pk, message.Info.ID, poll_id, exc)
            return
        event = message_event(message, self.instance.wid, data)
        if event is not None:
            sink.emit(self.instance, event)

    def download(self, message: Any, data: dict[str, Any]) -> dict[str, Any]:
        """A received file downloaded from WhatsApp (``download_any``) and stored
        like an upload, so ``downloadUrl`` and downloadFile serve it. A file that
        cannot be fetched or stored still arrives, with an empty ``downloadUrl``
        (as on the cloud engine), and the reason is logged."""
        from engines.waweb.translate import unwrap  # why: neonize loads only in the session process

        file = dict(data["fileMessageData"])
        content_message = unwrap(message.Message)
        size = max((getattr(part, "fileLength", 0) for _, part in content_message.ListFields()), default=0)
        try:
            if size > int(settings.MEDIA_MAX_BYTES):
                raise media.MediaUnavailable(f"{size} bytes is over MEDIA_MAX_BYTES")
            content = self.client.download_any(content_message)
            stored = media.store(
                instance_id=self.instance.pk,
                content=content or b"",
                file_name=str(file.get("fileName") or ""),
                mime_hints=(str(file.get("mimeType") or "") or None,),
            )
        except Exception as exc:  # noqa: BLE001 - neonize's DownloadError, MediaUnavailable: the message still goes out
            log.warning("waweb instance %s: media of %s not downloaded: %s", self.instance.pk, message.Info.ID, exc)
            return data
        file.update(downloadUrl=stored.url, fileName=stored.file_name, mimeType=stored.mime_type)
        return {**data, "fileMessageData": file}

    def keep(self, message: Any) -> None:
        """Keep a message's original (quotes, forwards, read receipts need it)."""
        from engines.waweb.translate import (  # why: neonize loads only in the session process
            chat_id,
            sender_jid,
            timestamp,
        )

        source = message.Info.MessageSource
        WawebOriginal.objects.get_or_create(
            instance_id=self.instance.pk,
            wa_id=message.Info.ID,
            defaults={
                "chat_id": chat_id(source.Chat),
                "sender": sender_jid(source.Sender),
                "from_me": bool(source.IsFromMe),
                "timestamp": timestamp(message.Info.Timestamp),
                "message": message.Message.SerializeToString(),
                "read": bool(source.IsFromMe),
            },
        )

    def prune(self) -> None:
        """Forget originals older than ``WAWEB_KEEP_MESSAGES_DAYS`` (once an hour)."""
        if time.monotonic() < self.next_prune:
            return
        self.next_prune = time.monotonic() + 3600
        cutoff = timezone.now() - timedelta(days=settings.WAWEB_KEEP_MESSAGES_DAYS)
        WawebOriginal.objects.filter(instance_id=self.instance.pk, timestamp__lt=cutoff).delete()

    def on_receipt(self, message: Any) -> None:
        from engines.waweb.translate import (  # why: neonize loads only in the session process
            READ_SELF,
            chat_id,
            receipt_status,
            timestamp,
        )

        if message.MessageSource.IsFromMe and message.Type == READ_SELF:
            # The phone (or another device) read them: readChat has nothing to send.
            WawebOriginal.objects.filter(
                instance_id=self.instance.pk, wa_id__in=list(message.MessageIDs)
            ).update(read=True)
        status = receipt_status(message)
        if status is None:
            return
        ours = dict(
            WawebMessage.objects.filter(
                instance_id=self.instance.pk, wa_id__in=list(message.MessageIDs)
            ).values_list("wa_id", "id_message")
        )
        when = timestamp(message.Timestamp)
        if chat_id(message.MessageSource.Chat) == STATUS_BROADCAST:
            # A viewer of one of our statuses: its statistic (getStatusStatistic).
            viewer = chat_id(message.MessageSource.Sender)
            seen: Literal["delivered", "read"] = "delivered" if status == "delivered" else "read"
            views = [
                StatusViewEvent(id_message=ours[w], viewer=viewer, status=seen, timestamp=when)
                for w in message.MessageIDs
                if w in ours
            ]
            if views:
                sink.emit(self.instance.pk, *views)
            return
        receipts = [
            ReceiptEvent(id_message=ours[w], status=status, timestamp=when)
            for w in message.MessageIDs
            if w in ours
        ]
        if receipts:
            sink.emit(self.instance.pk, *receipts)

    def on_history_sync(self, message: Any) -> None:
        """The phone's earlier messages (whatsmeow's ``HistorySync``, in chunks after
        a link): journal rows and chat list entries when ``enableMessagesHistory``
        is on, no notifications (as GREEN-API). Each chat's newest ``unreadCount``
        received messages stay unread; the rest are read. Originals are kept within
        the retention, so history can be quoted, forwarded and read (readChat)."""
        from engines.waweb.translate import history_chats  # why: neonize loads only in the session process

        data = message.Data
        if data.HasField("progress"):
            self.history_progress = int(data.progress)
        if not Instance.objects.get(pk=self.instance.pk).setting("enableMessagesHistory"):
            return
        me = self.client.get_me()
        cutoff = timezone.now() - timedelta(days=settings.WAWEB_KEEP_MESSAGES_DAYS)
        chats, read, unread, originals = history_chats(data, self.instance.wid, me.JID)
        WawebOriginal.objects.bulk_create(
            [
                WawebOriginal(instance_id=self.instance.pk, **fields)
                for fields in originals
                if fields["timestamp"] >= cutoff
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        now = timezone.now()
        if read or chats:
            sink.emit(self.instance, HistoryEvent(messages=tuple(read), chats=tuple(chats), timestamp=now))
        if unread:
            sink.emit(self.instance, HistoryEvent(messages=tuple(unread), timestamp=now, read=False))

    def on_call_offer(self, message: Any) -> None:
        from engines.waweb.translate import (  # why: neonize loads only in the session process
            chat_id,
            timestamp,
        )

        meta = message.basicCallMeta
        caller = getattr(meta, "from")
        self.call = {"id": meta.callID, "from": caller, "chat_id": chat_id(caller), "state": "inc-call"}
        event = CallEvent(
            id_call=meta.callID,
            chat_id=chat_id(caller),
            status="offer",
            timestamp=timestamp(meta.timestamp),
        )
        sink.emit(self.instance, event)

    def on_call_terminate(self, message: Any) -> None:
        from engines.waweb.translate import (  # why: neonize loads only in the session process
            chat_id,
            timestamp,
        )

        meta = message.basicCallMeta
        status = "declined" if "reject" in message.reason.lower() else "hungUp"
        if self.call is not None and self.call["id"] == meta.callID:
            self.call = None
            self.call_ended = ("rejected" if status == "declined" else None, time.monotonic())
        event = CallEvent(
            id_call=meta.callID,
            chat_id=chat_id(getattr(meta, "from")),
            status=status,
            timestamp=timestamp(meta.timestamp),
        )
        sink.emit(self.instance, event)

    def on_call_accept(self, message: Any) -> None:
        # The ringing call was answered (on the phone: this device cannot take calls).
        if self.call is not None and self.call["id"] == message.basicCallMeta.callID:
            self.call["state"] = "on-call"

    def _forget_device(self) -> None:
        store.erase_keys(self.instance.pk, self.row.device_jid)
        WawebSession.objects.filter(pk=self.instance.pk).update(device_jid="", push_name="")
        self.row.device_jid = ""

    # --- Commands (main thread, from the channel) ------------------------------------

    def handle(self, name: str, args: dict[str, Any]) -> Any:
        command = self.commands.get(name)
        if command is None:
            raise TransportError(f"the waweb engine has no command {name}", permanent=True)
        if name not in ("pair_phone", "logout", "reboot", "profile", "call_status") and not self.connected:
            raise TransportError("the WhatsApp connection of this instance is not up; retry later")
        try:
            return command(args)
        except (TransportError, Stop):
            raise
        except Exception as exc:  # noqa: BLE001 - neonize raises its own error classes for WhatsApp's refusals
            raise TransportError(f"WhatsApp refused {name}: {exc}", permanent=True) from exc

    def cmd_send(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        from engines.waweb import outgoing  # why: neonize loads only in the session process

        results: list[dict[str, Any]] = []
        for raw in args["payloads"]:
            payload = OutgoingPayload(**raw)
            try:
                results.append(outgoing.send(self, payload))
            except TransportError as exc:
                results.append({"error": channel.encode_error(exc)})
                if not exc.permanent:
                    break
            except Exception as exc:  # noqa: BLE001 - neonize raises its own classes
                results.append(
                    {
                        "error": channel.encode_error(
                            TransportError(f"WhatsApp refused it: {exc}", permanent=True)
                        )
                    }
                )
        return results

    def cmd_pair_phone(self, args: dict[str, Any]) -> str:
        phone = str(args["phone"])
        if self.row.qr_count == 0:
            raise TransportError(
                "the session has not reached WhatsApp yet (no QR code): retry in a few seconds"
            )
        from neonize.utils.enum import ClientType  # why: neonize loads only in the session process

        self.row.pairing_phone = phone
        code = str(self.client.PairPhone(phone, True, client_type=ClientType.CHROME))
        sink.emit(self.instance, PairingCodeEvent(code=code, phone=phone, timestamp=timezone.now()))
        return code

    def cmd_logout(self, args: dict[str, Any]) -> bool:
        linked = bool(self.row.device_jid)
        if self.connected:
            self.client.logout()
        self._forget_device()
        # Unlike a logout from the phone, the API's logout is the start of a new link:
        # the next session (started at once) shows fresh QR codes.
        self.after_answer = Stop(EXIT_STOPPED, "logout")
        return linked

    def cmd_reboot(self, args: dict[str, Any]) -> bool:
        self.after_answer = Stop(EXIT_STOPPED, "reboot")
        return True

    def cmd_profile(self, args: dict[str, Any]) -> dict[str, Any] | None:
        if not self.connected:
            return None
        me = self.client.get_me()
        return {
            "phone": me.JID.User,
            "name": me.PushName,
            "avatar_url": self._own_picture(),
            "lid": f"{me.LID.User}@lid" if me.LID.User else "",
            "device_id": f"{me.JID.User}:{me.JID.Device}@s.whatsapp.net",
            "history_sync_progress": self.history_progress,
        }

    def cmd_check_whatsapp(self, args: dict[str, Any]) -> dict[str, Any]:
        """whatsmeow's IsOnWhatsApp for the number; a LID is resolved through the
        session's LID store first. The LID answered is the one that store holds
        for the number (learnt from WhatsApp's own traffic), if any: IsOnWhatsApp
        itself reports none."""
        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        chat_id = str(args.get("chat_id") or f"{args['phone']}@c.us")
        user, _, server = chat_id.partition("@")
        lid = ""
        if server == "lid":
            phone = self.client.get_pn_from_lid(to_jid(chat_id)).User
            if not phone:
                raise TransportError(f"this session knows no phone number for {chat_id}", permanent=True)
            lid = chat_id
        else:
            phone = user
        if not self._on_whatsapp(phone):
            return {"exists": False}
        if not lid:
            lid = self._known_lid(phone)
        return {"exists": True, "phone": phone, "lid": lid}

    def _known_lid(self, phone: str) -> str:
        """The LID whatsmeow's store learnt for ``phone``, or "" (none yet, or the
        store could not be read: a lookup, not WhatsApp refusing anything)."""
        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        try:
            known = self.client.get_lid_from_pn(to_jid(f"{phone}@c.us")).User
        except Exception:  # noqa: BLE001 - neonize raises GetJIDFromStoreError (and ctypes errors) for a failed lookup
            log.info("no LID in the store for +%s", phone, exc_info=True)
            return ""
        return f"{known}@lid" if known else ""

    def cmd_send_presence(self, args: dict[str, Any]) -> None:
        from neonize.utils.enum import (  # why: neonize loads only in the session process
            ChatPresence,
            ChatPresenceMedia,
        )

        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        media = (
            ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO
            if args["recording"]
            else ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT
        )
        self.client.send_chat_presence(to_jid(args["chat_id"]), ChatPresence.CHAT_PRESENCE_COMPOSING, media)

    def cmd_get_avatar(self, args: dict[str, Any]) -> dict[str, Any]:
        from neonize.proto.Neonize_pb2 import (
            GetProfilePictureParams,  # why: neonize loads only in the session process
        )

        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        jid = to_jid(args["chat_id"])
        try:
            picture = self.client.get_profile_picture(jid, GetProfilePictureParams(Preview=False))
        except Exception:  # noqa: BLE001 - no picture, hidden from us, or no account at all
            return {"exists": jid.Server != "s.whatsapp.net" or self._on_whatsapp(jid.User), "url": ""}
        return {"exists": True, "url": picture.URL}

    def _on_whatsapp(self, phone: str) -> bool:
        answers = self.client.is_on_whatsapp("+" + phone)
        return bool(answers and answers[0].IsIn)

    def _own_picture(self) -> str:
        from neonize.proto.Neonize_pb2 import (
            GetProfilePictureParams,  # why: neonize loads only in the session process
        )
        from neonize.utils.jid import build_jid  # why: neonize loads only in the session process

        try:
            me = self.client.get_me()
            return str(self.client.get_profile_picture(build_jid(me.JID.User), GetProfilePictureParams(Preview=False)).URL)
        except Exception:  # noqa: BLE001 - no picture set
            return ""

    def cmd_contact_info(self, args: dict[str, Any]) -> dict[str, Any] | None:
        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        jid = to_jid(args["chat_id"])
        if jid.Server == "s.whatsapp.net" and not self._on_whatsapp(jid.User):
            return None  # getContactInfo of a number without WhatsApp: nothing to tell
        info = self.client.get_user_info(jid)
        about = ""
        is_business = False
        for entry in getattr(info, "UsersInfo", []) or []:
            about = entry.UserInfo.Status
            is_business = entry.UserInfo.HasField("VerifiedName")
        avatar = self.cmd_get_avatar(args)["url"]
        return {
            "chat_id": args["chat_id"],
            "name": "",
            "contact_name": "",
            "avatar_url": avatar,
            "about": about,
            "is_business": is_business,
        }

    def _wa_id(self, id_message: str) -> str:
        return (
            WawebMessage.objects.filter(instance_id=self.instance.pk, id_message=id_message)
            .values_list("wa_id", flat=True)
            .first()
            or id_message
        )

    def cmd_delete_message(self, args: dict[str, Any]) -> str:
        from neonize.utils.jid import build_jid  # why: neonize loads only in the session process

        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        me = self.client.get_me()
        response = self.client.revoke_message(
            to_jid(args["chat_id"]), build_jid(me.JID.User), self._wa_id(args["id_message"])
        )
        return str(response.ID)

    def cmd_edit_message(self, args: dict[str, Any]) -> str:
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
            Message,  # why: neonize loads only in the session process
        )

        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        response = self.client.edit_message(
            to_jid(args["chat_id"]), self._wa_id(args["id_message"]), Message(conversation=args["text"])
        )
        return str(response.ID)

    def cmd_set_disappearing(self, args: dict[str, Any]) -> None:
        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        # Nanoseconds as an int: neonize's timedelta path converts to milliseconds
        # while Go reads nanoseconds (7 days would become 0.6 s, i.e. off).
        self.client.set_disappearing_timer(to_jid(args["chat_id"]), int(args["expiration"]) * 1_000_000_000)

    def cmd_set_profile_picture(self, args: dict[str, Any]) -> str:
        self.client.set_profile_photo(base64.b64decode(args["data"]))
        # whatsmeow answers the picture's id; the contract answers its URL.
        return self._own_picture()

    def _group(self, info: Any) -> dict[str, Any]:
        from engines.waweb.translate import chat_id  # why: neonize loads only in the session process

        group_id = chat_id(info.JID)
        try:
            link = self.client.get_group_invite_link(info.JID)
        except Exception:  # noqa: BLE001 - only admins may read the link
            link = ""
        try:
            picture = str(self.client.get_profile_picture(info.JID).URL)
        except Exception:  # noqa: BLE001 - no picture
            picture = ""
        return {
            "group_id": group_id,
            "owner": chat_id(info.OwnerJID),
            "subject": info.GroupName.Name,
            "creation": int(info.GroupCreated),
            "subject_time": int(info.GroupName.NameSetAt),
            "subject_owner": chat_id(info.GroupName.NameSetBy),
            "participants": [
                {
                    "chat_id": chat_id(p.JID),
                    "is_admin": bool(p.IsAdmin),
                    "is_super_admin": bool(p.IsSuperAdmin),
                }
                for p in info.Participants
                if not p.Error  # create_group lists who could not be added, with the server's code
            ],
            "invite_link": link,
            "picture_url": picture,
            "only_admins_send": bool(info.GroupAnnounce.IsAnnounce),
            "only_admins_edit": bool(info.GroupLocked.isLocked),  # neonize spells it so
        }

    def cmd_create_group(self, args: dict[str, Any]) -> dict[str, Any]:
        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        info = self.client.create_group(args["name"], participants=[to_jid(p) for p in args["participants"]])
        return self._group(info)

    def cmd_group_data(self, args: dict[str, Any]) -> dict[str, Any]:
        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        try:
            info = self.client.get_group_info(to_jid(args["group_id"]))
        except Exception as exc:  # noqa: BLE001 - neonize's GetGroupInfoError
            raise GroupRefused("item-not-found", str(exc)) from exc
        return self._group(info)

    def cmd_update_group_name(self, args: dict[str, Any]) -> None:
        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        self.client.set_group_name(to_jid(args["group_id"]), args["name"])

    def cmd_group_participant(self, args: dict[str, Any]) -> None:
        from neonize.utils.enum import ParticipantChange  # why: neonize loads only in the session process

        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        change = {
            "add": ParticipantChange.ADD,
            "remove": ParticipantChange.REMOVE,
            "promote": ParticipantChange.PROMOTE,
            "demote": ParticipantChange.DEMOTE,
        }[args["change"]]
        answers = self.client.update_group_participants(
            to_jid(args["group_id"]), [to_jid(args["participant"])], change
        )
        # whatsmeow does not raise for a participant WhatsApp refused: its answer
        # carries the server's code for each one.
        for answer in answers:
            if answer.Error:
                reason = PARTICIPANT_ERRORS.get(int(answer.Error), "refused")
                raise GroupRefused(reason, f"WhatsApp refused {args['change']} of {args['participant']} ({answer.Error})")

    def cmd_set_group_picture(self, args: dict[str, Any]) -> str:
        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        jid = to_jid(args["group_id"])
        self.client.set_group_photo(jid, base64.b64decode(args["data"]))
        # whatsmeow answers the picture's id; the contract answers its URL.
        try:
            return str(self.client.get_profile_picture(jid).URL)
        except Exception:  # noqa: BLE001 - set, but not readable yet
            return ""

    def cmd_leave_group(self, args: dict[str, Any]) -> None:
        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        self.client.leave_group(to_jid(args["group_id"]))

    def cmd_update_group_settings(self, args: dict[str, Any]) -> None:
        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        jid = to_jid(args["group_id"])
        if args.get("only_admins_send") is not None:
            self.client.set_group_announce(jid, bool(args["only_admins_send"]))
        if args.get("only_admins_edit") is not None:
            self.client.set_group_locked(jid, bool(args["only_admins_edit"]))

    def cmd_delete_status(self, args: dict[str, Any]) -> bool:
        """Revoke one of our statuses. False when it is not live: never posted, over
        a day old (WhatsApp has dropped it) or deleted before (its kept original is
        what says it is live, and the revoke removes it)."""
        from neonize.utils.jid import build_jid  # why: neonize loads only in the session process

        from engines.waweb.translate import to_jid  # why: neonize loads only in the session process

        wa_id = (
            WawebMessage.objects.filter(instance_id=self.instance.pk, id_message=args["id_message"])
            .values_list("wa_id", flat=True)
            .first()
        )
        live = WawebOriginal.objects.filter(
            instance_id=self.instance.pk,
            wa_id=wa_id or "",
            chat_id=STATUS_BROADCAST,
            timestamp__gte=timezone.now() - timedelta(days=1),
        )
        if not wa_id or not live.exists():
            return False
        me = self.client.get_me()
        self.client.revoke_message(to_jid(STATUS_BROADCAST), build_jid(me.JID.User), wa_id)
        live.delete()
        return True

    def cmd_read_chat(self, args: dict[str, Any]) -> int:
        """Read receipts for the chat's unread received messages (all, or up to
        ``id_message``), one ``mark_read`` per sender (a group's members). Returns
        how many messages were marked."""
        from neonize.utils.enum import ReceiptType  # why: neonize loads only in the session process

        from engines.waweb.translate import (  # why: neonize loads only in the session process
            from_jid_text,
            to_jid,
        )

        chat = str(args["chat_id"])
        unread = WawebOriginal.objects.filter(instance_id=self.instance.pk, chat_id=chat, from_me=False, read=False)
        if args.get("id_message"):
            bound = (
                WawebOriginal.objects.filter(instance_id=self.instance.pk, wa_id=args["id_message"])
                .values_list("timestamp", "pk")
                .first()
            )
            if bound is not None:
                # WhatsApp's timestamps are seconds: of messages within the same second
                # as the bound, only those that arrived before it (rows are kept in
                # arrival order) are up to it.
                at, arrived = bound
                unread = unread.filter(Q(timestamp__lt=at) | Q(timestamp=at, pk__lte=arrived))
        by_sender: dict[str, list[tuple[int, str]]] = {}
        for pk, wa_id, sender in unread.order_by("timestamp", "pk").values_list("pk", "wa_id", "sender"):
            by_sender.setdefault(sender, []).append((pk, wa_id))
        for sender, rows in by_sender.items():
            self.client.mark_read(
                *[wa_id for _, wa_id in rows], chat=to_jid(chat), sender=from_jid_text(sender), receipt=ReceiptType.READ
            )
            WawebOriginal.objects.filter(pk__in=[pk for pk, _ in rows]).update(read=True)
        return sum(len(rows) for rows in by_sender.values())

    def cmd_contacts(self, args: dict[str, Any]) -> list[dict[str, str]]:
        """whatsmeow's contact store: the phone's address book as app-state sync
        brought it, plus everyone whose push name the session saw. Only while
        connected (``handle`` checks): before a login whatsmeow has no store and the
        call would abort the process."""
        from engines.waweb.translate import chat_id  # why: neonize loads only in the session process

        return [
            {
                "chat_id": chat_id(entry.JID),
                "name": entry.Info.PushName or entry.Info.BusinessName,
                "contact_name": entry.Info.FullName or entry.Info.FirstName,
            }
            for entry in self.client.contact.get_all_contacts()
            if entry.JID.Server == "s.whatsapp.net"
        ]

    def cmd_call_status(self, args: dict[str, Any]) -> dict[str, Any]:
        """callsState as this device sees it: the incoming call ringing it (or
        answered on the phone), else ``idle`` with why the last one ended if that
        was under a minute ago. Calls placed from the phone are not seen."""
        if self.call is not None:
            return {"state": self.call["state"], "id_call": self.call["id"], "peer": self.call["from"].User}
        reason = None
        if self.call_ended is not None and time.monotonic() - self.call_ended[1] < CALL_REASON_SECONDS:
            reason = self.call_ended[0]
        return {"state": "idle", "reason": reason}

    def cmd_call_reject(self, args: dict[str, Any]) -> dict[str, Any]:
        """callsReject: decline the ringing incoming call (whatsmeow's RejectCall)."""
        if self.call is None or self.call["state"] != "inc-call":
            raise CallError("there is no incoming call to reject")
        self.client.reject_call(self.call["from"], self.call["id"])
        self.call = None
        self.call_ended = ("rejected", time.monotonic())
        return self.cmd_call_status(args)

    # --- The process's main loop ----------------------------------------------------------

    after_answer: Stop | None = None

    def connect_in_thread(self, proxy: str) -> threading.Thread:
        def dial() -> None:
            try:
                if proxy:
                    from neonize.client import ProxySettings  # why: neonize loads only in the session process

                    self.client.connect(ProxySettings(proxy_address=proxy))
                else:
                    self.client.connect()
            except Exception as exc:  # noqa: BLE001 - NeonizeError: reported to the main thread
                self.events.put(("dial_failed", str(exc)))
            else:
                self.events.put(("dial_failed", "the connection ended"))

        thread = threading.Thread(target=dial, name=f"waweb-dial-{self.instance.pk}", daemon=True)
        thread.start()
        return thread

    def on_dial_failed(self, why: str) -> None:
        WawebSession.objects.filter(pk=self.instance.pk).update(last_error=why[:1000])
        raise Stop(EXIT_CONNECT_FAILED, why)

    def serve(self, listener: channel.Listener, stop: threading.Event) -> int:
        """Apply events and run commands until something ends the session."""
        from engines.waweb import transport

        # What this process itself asks of its own session (markIncomingMessagesReaded
        # reading a chat while an event is applied) runs here, not through the channel
        # this same thread serves.
        transport.IN_PROCESS[self.instance.pk] = self.handle
        try:
            while not stop.is_set():
                if not listener.keep_alive():
                    return EXIT_LEASE_LOST
                self.pump()
                if self.connected:
                    self.prune()
                    self.sync_presence()
                self.probe_if_due()
                for command in listener.take():
                    listener.run(command, self.handle)
                    if self.after_answer is not None:
                        raise self.after_answer
                if (
                    self.qr_deadline is not None
                    and time.monotonic() > self.qr_deadline
                    and not self.connected
                ):
                    raise Stop(EXIT_QR_TIMEOUT, "nobody scanned the QR code in time")
                if self.events.empty():
                    listener.wait(0.2)
        except Stop as stopped:
            log.info("waweb session of %s ends: %s", self.instance.pk, stopped)
            return stopped.code
        finally:
            transport.IN_PROCESS.pop(self.instance.pk, None)
        return EXIT_STOPPED


def new_client(instance_id: int, device_jid: str) -> Any:
    """A neonize client on the instance's store: resuming the linked device, or a
    new device (QR or pairing code) when there is none."""
    from neonize.client import NewClient  # why: neonize loads only in the session process
    from neonize.proto.Neonize_pb2 import JID  # why: neonize loads only in the session process

    name = store.store_name(instance_id)
    uuid = f"relay-{instance_id}"
    if device_jid:
        user_device, _, server = device_jid.partition("@")
        user, _, device = user_device.partition(":")
        jid = JID(User=user, Device=int(device or 0), Server=server, RawAgent=0, Integrator=0, IsEmpty=False)
        return NewClient(name, jid=jid, uuid=uuid)
    return NewClient(name, uuid=uuid, new_device=True)


def prepare(
    instance_id: int, epoch: int, runner_id: str, make_client: Callable[[int, str], Any]
) -> Session:
    """Everything a session does before it dials: its row reset for a new start, a
    client on the linked device (``make_client(instance_id, device_jid)``; tests give
    a fake with neonize's surface), the callbacks wired, and the state it starts in."""
    instance = Instance.objects.get(pk=instance_id)
    row, _ = WawebSession.objects.get_or_create(instance_id=instance_id)
    WawebSession.objects.filter(pk=instance_id).update(
        started_at=timezone.now(), connected=False, qr_text="", qr_png="", qr_count=0, pairing_code=""
    )
    session = Session(instance, epoch, runner_id, make_client(instance_id, row.device_jid))
    session.row.qr_count = 0
    session.install()
    if row.device_jid and instance.state in (State.NOT_AUTHORIZED, State.SLEEP_MODE, State.YELLOW_CARD):
        session.set_state(State.STARTING)  # resuming the linked device
    elif not row.device_jid and instance.state != State.NOT_AUTHORIZED:
        session.set_state(State.NOT_AUTHORIZED, wid="", profile_name="")  # nothing linked: QR codes follow
    return session


def run(instance_id: int, epoch: int, runner_id: str, parent: int | None) -> int:
    """The body of ``manage.py wa_session``; returns the exit code."""
    die_with_parent(parent)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    listener = channel.Listener(instance_id, epoch, runner_id)
    if not listener.start():
        return EXIT_LEASE_LOST
    try:
        session = prepare(instance_id, epoch, runner_id, new_client)
        session.connect_in_thread(proxy_url(str(session.instance.setting("proxyInstance"))))
        return session.serve(listener, stop)
    finally:
        listener.stop()
