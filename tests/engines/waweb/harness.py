"""The waweb engine's conformance harness (``tests/engines/harness.py``).

The real ``engines.waweb.session.Session`` runs in the test's process and
transaction (no child process, which could not see the test's rows), on a client
with neonize's Python surface: neonize's own ``NewClient``, whose calls that would
reach WhatsApp through whatsmeow answer from ``FakeWhatsApp`` (the other side: who
has an account, what each chat received, groups, pictures, presences, linked
devices) with the neonize protobufs whatsmeow hands back. What the other side does
(a peer writes, reads, calls; the phone links the device) is fed as serialised
whatsmeow events through neonize's own dispatcher (``neonize_events.feed``).

Commands travel the real command channel (``engines.channel``): the transport
writes the row and publishes the wake-up; the harness hooks that wake-up to run one
pass of the session's own ``serve`` loop, which claims the row at its lease epoch,
runs it and answers, before the caller reads the answer. ``settle`` is one pass of
every session plus what the runner would do (start a session for a lease it can
take, restart one that stopped), and what whatsmeow's dial does (connect a linked
device, show a QR code to an unlinked one).
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

from django.db.models import Q

from engines import channel, events
from instances.dbclock import db_in, db_now
from instances.models import Account, Instance, SessionLease
from tests.engines.harness import Harness, NotObservable, register

RUNNER = "conformance-waweb"
DEVICE = 7  # the linked device's number on the account
_ids = itertools.count(1)


def _hex_id() -> str:
    return f"3EB0{next(_ids):016X}"


@dataclass
class Group:
    subject: str
    owner: str
    members: dict[str, bool]  # phone -> is admin
    created: int
    announce: bool = False
    locked: bool = False
    picture: str = ""


@dataclass
class FakeWhatsApp:
    """The WhatsApp network as the tests see it; phones are digits (``7956…``)."""

    accounts: set[str] = field(default_factory=set)
    linked: dict[str, bool] = field(default_factory=dict)  # account -> our device linked
    received: list[tuple[str, str, Any]] = field(
        default_factory=list
    )  # (chat jid user@server, wa id, Message)
    presences: dict[tuple[str, str], str] = field(
        default_factory=dict
    )  # (from, to) -> composing/recording/paused
    read: set[tuple[str, str]] = field(default_factory=set)  # (chat, wa id) marked read by us
    pictures: dict[str, str] = field(default_factory=dict)  # user or group id -> URL
    groups: dict[str, Group] = field(default_factory=dict)  # group user part -> group
    timers: dict[tuple[str, str], int] = field(default_factory=dict)
    address_books: dict[str, dict[str, str]] = field(default_factory=dict)  # account -> phone -> saved name
    calls: dict[str, tuple[str, str]] = field(default_factory=dict)  # caller phone -> (call id, state)


def _client_class() -> type:
    """``NewClient`` with whatsmeow's network answered by ``FakeWhatsApp`` (built on
    first use: neonize loads only where the engine is installed)."""
    from neonize.client import NewClient
    from neonize.exc import GetGroupInfoError, GetProfilePictureError, UpdateGroupParticipantsError
    from neonize.proto import Neonize_pb2 as pb
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message
    from neonize.utils.enum import ChatPresence, ChatPresenceMedia, ParticipantChange

    from tests.engines.waweb.neonize_events import EMPTY, jid

    def timings() -> Any:
        zero = dict.fromkeys(
            (
                "Queue",
                "Marshal",
                "GetParticipants",
                "GetDevices",
                "GroupEncrypt",
                "PeerEncrypt",
                "Send",
                "Resp",
                "Retry",
            ),
            0,
        )
        return pb.MessageDebugTimings(**zero)

    def participant(phone: str, admin: bool, owner: bool, error: int = 0) -> Any:
        return pb.GroupParticipant(
            JID=jid(phone),
            LID=EMPTY,
            PhoneNumber=jid(phone),
            IsAdmin=admin,
            IsSuperAdmin=owner,
            DisplayName="",
            Error=error,
        )

    class Contacts:
        """whatsmeow's contact store (``client.contact``): the phone's address book as
        app-state sync brought it."""

        def __init__(self, network: FakeWhatsApp, phone: str) -> None:
            self.network, self.phone = network, phone

        def get_all_contacts(self) -> list[Any]:
            book = self.network.address_books.get(self.phone, {})
            return [
                pb.Contact(
                    JID=jid(number),
                    Info=pb.ContactInfo(
                        Found=True,
                        FirstName=name.split()[0],
                        FullName=name,
                        PushName=name,
                        BusinessName="",
                        RedactedPhone="",
                    ),
                )
                for number, name in book.items()
            ]

    class Client(NewClient):
        network: FakeWhatsApp
        phone: str

        def _info(self, group_id: str) -> Any:
            group = self.network.groups[group_id]
            owner = jid(group.owner)
            info = pb.GroupInfo(
                OwnerJID=owner,
                JID=jid(group_id, "g.us"),
                OwnerPN=owner,
                GroupName=pb.GroupName(Name=group.subject, NameSetAt=group.created, NameSetBy=owner),
                GroupTopic=pb.GroupTopic(
                    Topic="", TopicID="", TopicSetAt=0, TopicSetBy=EMPTY, TopicDeleted=False
                ),
                GroupLocked=pb.GroupLocked(isLocked=group.locked),
                GroupAnnounce=pb.GroupAnnounce(IsAnnounce=group.announce, AnnounceVersionID=""),
                GroupEphemeral=pb.GroupEphemeral(IsEphemeral=False, DisappearingTimer=0),
                GroupIncognito=pb.GroupIncognito(IsIncognito=False),
                GroupParent=pb.GroupParent(IsParent=False, DefaultMembershipApprovalMode=""),
                GroupLinkedParent=pb.GroupLinkedParent(LinkedParentJID=EMPTY),
                GroupIsDefaultSub=pb.GroupIsDefaultSub(IsDefaultSubGroup=False),
                GroupCreated=group.created,
                ParticipantVersionID="1",
                Participants=[participant(p, a, p == group.owner) for p, a in group.members.items()],
            )
            assert info.IsInitialized()  # as whatsmeow's answer parses: every required field
            return info

        # --- The account ---------------------------------------------------------------

        def get_me(self) -> Any:
            return pb.Device(
                JID=jid(self.phone, device=DEVICE),
                LID=jid("1" + self.phone, "lid"),
                PushName="Shop",
                Platform="",
            )

        def PairPhone(
            self, phone: str, show_push_notification: bool, client_type: Any = None, **_: Any
        ) -> str:  # noqa: N802 - neonize's name
            return "ABCD-EFGH"

        def logout(self) -> None:
            self.network.linked[self.phone] = False

        def set_profile_photo(self, file_or_bytes: str | bytes) -> str:
            picture = str(next(_ids))
            self.network.pictures[self.phone] = f"https://pps.whatsapp.net/v/t61/{picture}.jpg"
            return picture

        # --- Messages and chats -------------------------------------------------------

        def upload(self, binary: bytes, media_type: Any = None) -> Any:
            import hashlib

            digest = hashlib.sha256(binary).digest()
            path = f"/v/t62.7118-24/{next(_ids)}.enc"
            return pb.UploadResponse(
                url=f"https://mmg.whatsapp.net{path}",
                DirectPath=path,
                Handle="",
                MediaKey=digest,
                FileEncSHA256=digest,
                FileSHA256=digest,
                FileLength=len(binary),
            )

        def send_message(self, to: Any, message: Any, link_preview: bool = False, **_: Any) -> Any:
            # neonize turns a plain string into a conversation (no mentions, no preview).
            msg = Message(conversation=message) if isinstance(message, str) else message
            wa_id = _hex_id()
            if to.Server != "s.whatsapp.net" or to.User in self.network.accounts:
                self.network.received.append((f"{to.User}@{to.Server}", wa_id, msg))
            # whatsmeow sends to a number without an account all the same: it reaches
            # no device (nothing received), and the server does not refuse it.
            return pb.SendResponse(Timestamp=1_767_000_000, ID=wa_id, ServerID=0, DebugTimings=timings())

        def mark_read(
            self, *message_ids: str, chat: Any, sender: Any, receipt: Any, timestamp: int | None = None
        ) -> None:
            for wa_id in message_ids:
                self.network.read.add((f"{chat.User}@{chat.Server}", wa_id))

        def reject_call(self, call_from: Any, call_id: str) -> None:
            from neonize.exc import RejectCallError

            # whatsmeow's RejectCall: the caller (as the offer named it) sees the call end.
            if self.network.calls.get(call_from.User, ("", ""))[0] != call_id:
                raise RejectCallError("no such call")
            self.network.calls[call_from.User] = (call_id, "idle")

        def get_status_privacy(self) -> list[Any]:
            # The phone's default: statuses reach the saved contacts.
            return [pb.StatusPrivacy(Type=pb.StatusPrivacy.CONTACTS, IsDefault=True)]

        def send_chat_presence(self, jid_: Any, state: Any, media: Any) -> None:
            if state == ChatPresence.CHAT_PRESENCE_COMPOSING:
                seen = "recording" if media == ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO else "composing"
            else:
                seen = "paused"
            self.network.presences[(self.phone, jid_.User)] = seen

        def is_on_whatsapp(self, *numbers: str) -> list[Any]:
            return [
                pb.IsOnWhatsAppResponse(
                    Query=n, JID=jid(n.lstrip("+")), IsIn=n.lstrip("+") in self.network.accounts
                )
                for n in numbers
            ]

        # whatsmeow's LID store: this fake network shows no LIDs, so it learns none.
        def get_lid_from_pn(self, jid_: Any) -> Any:
            return jid("", "lid")

        def get_pn_from_lid(self, jid_: Any) -> Any:
            return jid("")

        def get_user_info(self, *jids: Any) -> list[Any]:
            # whatsmeow's USync answers only for users WhatsApp knows.
            return [
                pb.GetUserInfoSingleReturnFunction(
                    JID=j, UserInfo=pb.UserInfo(Status="Hey there! I am using WhatsApp.", PictureID="")
                )
                for j in jids
                if j.User in self.network.accounts
            ]

        def get_profile_picture(self, jid_: Any, extra: Any = None) -> Any:
            url = self.network.pictures.get(jid_.User)
            if not url:
                raise GetProfilePictureError("item-not-found")  # no picture, or no such account
            return pb.ProfilePictureInfo(URL=url, ID="1", Type="image", DirectPath="/v/t61/1.jpg")

        def set_disappearing_timer(self, jid_: Any, timer: Any, setting_ts: Any = None) -> None:
            self.network.timers[(self.phone, jid_.User)] = int(timer)

        # --- Groups ---------------------------------------------------------------------

        def create_group(self, name: str, participants: list[Any] = [], **_: Any) -> Any:  # noqa: B006 - neonize's signature
            group_id = f"120363{next(_ids):012d}"
            members = {self.phone: True} | {
                p.User: False for p in participants if p.User in self.network.accounts
            }
            self.network.groups[group_id] = Group(
                subject=name, owner=self.phone, members=members, created=1_767_000_000
            )
            info = self._info(group_id)
            # whatsmeow lists who could not be added, with the server's error code.
            info.Participants.extend(
                participant(p.User, False, False, error=404)
                for p in participants
                if p.User not in self.network.accounts
            )
            return info

        def get_group_info(self, jid_: Any) -> Any:
            group = self.network.groups.get(jid_.User)
            if group is None or self.phone not in group.members:
                raise GetGroupInfoError("item-not-found")
            return self._info(jid_.User)

        def get_group_invite_link(self, jid_: Any, revoke: bool = False) -> str:
            return f"https://chat.whatsapp.com/{jid_.User}"

        def set_group_name(self, jid_: Any, name: str) -> None:
            self.network.groups[jid_.User].subject = name

        def set_group_announce(self, jid_: Any, announce: bool) -> None:
            self.network.groups[jid_.User].announce = announce

        def set_group_locked(self, jid_: Any, locked: bool) -> None:
            self.network.groups[jid_.User].locked = locked

        def set_group_photo(self, jid_: Any, file_or_bytes: str | bytes) -> str:
            picture = str(next(_ids))
            self.network.pictures[jid_.User] = f"https://pps.whatsapp.net/v/t61/{picture}.jpg"
            return picture

        def leave_group(self, jid_: Any) -> None:
            self.network.groups[jid_.User].members.pop(self.phone, None)

        def update_group_participants(self, jid_: Any, changes: list[Any], action: Any) -> list[Any]:
            group = self.network.groups.get(jid_.User)
            if group is None:
                raise UpdateGroupParticipantsError("item-not-found")
            answers = []
            for p in changes:
                # whatsmeow answers per participant; the server's code is in ``Error``.
                if p.User not in self.network.accounts:
                    answers.append(participant(p.User, False, False, error=404))
                    continue
                if action == ParticipantChange.ADD:
                    group.members.setdefault(p.User, False)
                elif action == ParticipantChange.REMOVE:
                    group.members.pop(p.User, None)
                elif p.User in group.members:
                    group.members[p.User] = action == ParticipantChange.PROMOTE
                answers.append(participant(p.User, group.members.get(p.User, False), p.User == group.owner))
            return answers

    Client.Contacts = Contacts
    return Client


class OnePass(channel.Listener):
    """The session's own listener, whose ``wait`` ends ``Session.serve`` after one
    pass instead of sleeping for the next command."""

    def __init__(self, instance_id: int, epoch: int) -> None:
        super().__init__(instance_id, epoch, RUNNER)
        self.one_pass = threading.Event()  # the ``stop`` given to ``serve``
        self.waited = False

    def wait(self, timeout: float = 1.0) -> None:
        self.waited = True
        self.one_pass.set()


@dataclass
class Live:
    phone: str
    session: Any = None  # engines.waweb.session.Session while it runs
    listener: OnePass | None = None
    ended: int | None = None  # the exit code of the last session
    ended_epoch: int = 0


@register
class WawebHarness(Harness):
    engine = "waweb"
    # whatsmeow tells a linked device about messages, receipts, calls and its own
    # state, and the phone's history; block lists, group changes and status views
    # are not reported yet.
    reports: ClassVar[frozenset[type]] = frozenset(
        {events.MessageEvent, events.ReceiptEvent, events.StateEvent, events.CallEvent, events.HistoryEvent}
    )
    _phones = itertools.count(1)

    def __init__(self) -> None:
        self.network = FakeWhatsApp()
        self.live: dict[int, Live] = {}
        self.store: Path | None = None

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        self.store = Path(tempfile.mkdtemp(prefix="waweb-conformance-"))
        publish = channel._publish

        def wake(name: str) -> None:
            publish(name)
            if name.startswith(channel.WAKE_PREFIX):
                live = self.live.get(int(name.removeprefix(channel.WAKE_PREFIX)))
                if live is not None and live.session is not None:
                    self._serve(live)

        try:
            with mock.patch.object(channel, "_publish", wake):
                yield
        finally:
            for live in self.live.values():
                if live.listener is not None:
                    live.listener.stop()
            shutil.rmtree(self.store, ignore_errors=True)

    # --- The runner and the session process, in this process ---------------------------

    def _client(self, instance_id: int, device_jid: str) -> Any:
        assert self.store is not None, "the harness is not active"
        live = self.live[instance_id]
        cls = _client_class()
        uuid = f"conformance-{instance_id}-{next(_ids)}"
        store = str(self.store / f"{uuid}.sqlite3")
        client = cls(store, uuid=uuid, new_device=True) if not device_jid else cls(store, uuid=uuid)
        client.network, client.phone = self.network, live.phone
        client.contact = client.Contacts(self.network, live.phone)
        return client

    def _lease(self, instance_id: int) -> int | None:
        """The epoch this runner holds the instance at, taking the lease when it is
        free (as ``instances.runner.Runner.acquire`` does); None when another holds it."""
        lease = SessionLease.objects.get(instance_id=instance_id)
        if (
            lease.runner_id == RUNNER
            and SessionLease.objects.filter(pk=lease.pk, expires_at__gte=db_now()).exists()
        ):
            return lease.epoch
        won = (
            SessionLease.objects.filter(instance_id=instance_id, epoch=lease.epoch)
            .filter(Q(runner_id="") | Q(expires_at__lt=db_now()) | Q(expires_at__isnull=True))
            .update(
                runner_id=RUNNER,
                epoch=lease.epoch + 1,
                acquired_at=db_now(),
                heartbeat_at=db_now(),
                expires_at=db_in(300),
            )
        )
        return lease.epoch + 1 if won else None

    def _start(self, instance_id: int) -> None:
        """What the supervisor and ``session.run`` do, minus the child process: the
        listener at the lease epoch, ``session.prepare``, then whatsmeow's dial."""
        from engines.waweb.session import EXIT_LOGGED_OUT, prepare
        from tests.engines.waweb import neonize_events as ev

        live = self.live[instance_id]
        epoch = self._lease(instance_id)
        if epoch is None or (live.ended == EXIT_LOGGED_OUT and live.ended_epoch == epoch):
            return  # not ours, or parked: the phone removed the device at this epoch
        listener = OnePass(instance_id, epoch)
        assert listener.start()
        session = prepare(instance_id, epoch, RUNNER, self._client)
        live.session, live.listener, live.ended = session, listener, None
        if not session.row.device_jid:
            ev.feed_qr(session.client, f"2@conformance-{instance_id}-{next(_ids)},key,identity,adv")
        elif self.network.linked.get(live.phone):
            ev.feed(session.client, ev.connected())
        else:
            ev.feed(session.client, ev.logged_out())
        self._serve(live)

    def _serve(self, live: Live) -> None:
        """One pass of ``Session.serve``: apply the queued events, run the commands
        the channel brought; note the exit when the session ended."""
        session, listener = live.session, live.listener
        assert session is not None and listener is not None
        listener.waited = False
        listener.one_pass = threading.Event()
        code = session.serve(listener, listener.one_pass)
        if not listener.waited:  # it ended by itself: logged out, rebooted, lease lost
            listener.stop()
            live.session, live.listener, live.ended, live.ended_epoch = None, None, code, session.epoch

    def settle(self) -> None:
        for instance_id, live in list(self.live.items()):
            if live.session is None:
                self._start(instance_id)
            else:
                self._serve(live)

    def _session(self, instance: Instance) -> Any:
        live = self.live.get(instance.pk)
        if live is None or live.session is None:
            raise AssertionError(f"no waweb session runs for instance {instance.pk}")
        return live.session

    # --- Instances ------------------------------------------------------------------------

    def unpaired(self, account: Account) -> Instance:
        from tests.factories import make_instance

        instance = make_instance(account, engine="waweb")
        self.live[instance.pk] = Live(phone=f"7956{instance.pk % 100_000:05d}{next(self._phones) % 100:02d}")
        self._start(instance.pk)
        return Instance.objects.get(pk=instance.pk)

    def authorized(self, account: Account) -> Instance:
        instance = self.unpaired(account)
        self.pair(instance)
        self.settle()
        fresh = Instance.objects.get(pk=instance.pk)
        assert fresh.state == "authorized", fresh.state
        return fresh

    def pair(self, instance: Instance) -> None:
        """The phone scans the QR code: whatsmeow reports the pairing, then connects."""
        from neonize.proto.Neonize_pb2 import PairStatus

        from tests.engines.waweb import neonize_events as ev

        live = self.live[instance.pk]
        self.network.accounts.add(live.phone)
        self.network.linked[live.phone] = True
        client = self._session(instance).client
        status = PairStatus.DESCRIPTOR.fields_by_name["Status"].enum_type.values[0].number
        ev.feed(
            client,
            PairStatus(
                ID=ev.jid(live.phone, device=DEVICE), BusinessName="", Platform="android", Status=status
            ),
        )
        ev.feed(client, ev.connected())

    # --- The other side ---------------------------------------------------------------------

    def peer(self, instance: Instance, name: str = "Peer") -> str:
        phone = f"7957{instance.pk % 100_000:05d}{next(self._phones) % 100:02d}"
        self.network.accounts.add(phone)
        self.network.address_books.setdefault(self.live[instance.pk].phone, {})[phone] = name
        return f"{phone}@c.us"

    def _wa_id(self, instance: Instance, id_message: str) -> str:
        from engines.waweb.models import WawebMessage

        mapped = (
            WawebMessage.objects.filter(instance_id=instance.pk, id_message=id_message)
            .values_list("wa_id", flat=True)
            .first()
        )
        return mapped or id_message

    def _our_id(self, instance: Instance, wa_id: str) -> str:
        from engines.waweb.models import WawebMessage

        mapped = (
            WawebMessage.objects.filter(instance_id=instance.pk, wa_id=wa_id)
            .values_list("id_message", flat=True)
            .first()
        )
        return mapped or wa_id

    def received(self, instance: Instance, chat_id: str, id_message: str) -> dict[str, Any] | None:
        """What the peer's WhatsApp shows, in GREEN-API's names (the engine's own
        translation of a WhatsApp message); ids of our messages in Relay's ids."""
        from engines.waweb.translate import message_data, to_jid

        target = to_jid(chat_id)
        wa_id = self._wa_id(instance, id_message)
        for chat, got, message in self.network.received:
            if chat == f"{target.User}@{target.Server}" and got == wa_id:
                data = message_data(message)
                if data is None:
                    return None
                for key in ("deletedMessageData", "editedMessageData"):
                    if key in data:
                        data[key]["stanzaId"] = self._our_id(instance, data[key]["stanzaId"])
                return data
        return None

    def status_live(self, instance: Instance, id_message: str) -> bool:
        """Posted to status@broadcast and not revoked since (neonize's revoke is a
        protocol message sent to the same chat)."""
        wa_id = self._wa_id(instance, id_message)
        statuses = [message for chat, _, message in self.network.received if chat == "status@broadcast"]
        posted = any(got == wa_id for chat, got, _ in self.network.received if chat == "status@broadcast")
        revoked = any(m.HasField("protocolMessage") and wa_id == m.protocolMessage.key.ID for m in statuses)
        return posted and not revoked

    def presence(self, instance: Instance, chat_id: str) -> str | None:
        return self.network.presences.get((self.live[instance.pk].phone, chat_id.split("@")[0]))

    def seen_read(self, instance: Instance, chat_id: str, id_message: str) -> bool:
        from engines.waweb.translate import to_jid

        target = to_jid(chat_id)
        return (f"{target.User}@{target.Server}", id_message) in self.network.read

    def address_book(self, instance: Instance) -> dict[str, str]:
        book = self.network.address_books.get(self.live[instance.pk].phone, {})
        return {f"{number}@c.us": name for number, name in book.items()}

    def avatar_seen(self, instance: Instance) -> str:
        return self.network.pictures.get(self.live[instance.pk].phone, "")

    def group_members(self, instance: Instance, group_id: str) -> dict[str, bool]:
        group = self.network.groups[group_id.split("@")[0]]
        return {f"{phone}@c.us": admin for phone, admin in group.members.items()}

    def group_subject(self, instance: Instance, group_id: str) -> str:
        return self.network.groups[group_id.split("@")[0]].subject

    def group_settings(self, instance: Instance, group_id: str) -> tuple[bool, bool]:
        group = self.network.groups[group_id.split("@")[0]]
        return group.announce, group.locked

    def linked(self, instance: Instance) -> bool:
        return bool(self.network.linked.get(self.live[instance.pk].phone))

    # --- The other side acts ----------------------------------------------------------------

    def peer_sends_text(self, instance: Instance, chat_id: str, text: str) -> str:
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

        from tests.engines.waweb import neonize_events as ev

        wa_id = _hex_id()
        ev.feed(
            self._session(instance).client,
            ev.message(wa_id, chat_id.split("@")[0], Message(conversation=text)),
        )
        return wa_id

    def phone_sends_text(self, instance: Instance, chat_id: str, text: str) -> str:
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

        from tests.engines.waweb import neonize_events as ev

        wa_id = _hex_id()
        message = ev.message(
            wa_id,
            chat_id.split("@")[0],
            Message(conversation=text),
            from_me=True,
            me=self.live[instance.pk].phone,
        )
        ev.feed(self._session(instance).client, message)
        return wa_id

    def peer_posts_status(self, instance: Instance, chat_id: str, text: str) -> str:
        """A text status: whatsmeow hands it over as a message in ``status@broadcast``."""
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ExtendedTextMessage, Message

        from tests.engines.waweb import neonize_events as ev

        wa_id = _hex_id()
        event = ev.message(
            wa_id, chat_id.split("@")[0], Message(extendedTextMessage=ExtendedTextMessage(text=text))
        )
        event.Info.MessageSource.Chat.CopyFrom(ev.jid("status", "broadcast"))
        event.Info.Timestamp = int(time.time())  # statuses are listed for a day after they are posted
        ev.feed(self._session(instance).client, event)
        return wa_id

    def phone_syncs_history(self, instance: Instance, chat_id: str, messages: int) -> None:
        """whatsmeow's ``HistorySync`` after a link, with ``enableMessagesHistory`` on
        (the engine takes history in only then, as the setting says)."""
        from instances import services
        from tests.engines.waweb import neonize_events as ev

        services.update_settings(Instance.objects.get(pk=instance.pk), {"enableMessagesHistory": True})
        now = int(time.time())
        entries = [
            (_hex_id(), f"earlier {n}", n % 2 == 0, now - 3600 - 60 * n) for n in range(messages)
        ]  # newest first, as the phone sends them
        peer = chat_id.split("@")[0]
        ev.feed(
            self._session(instance).client, ev.history(ev.conversation(f"{peer}@s.whatsapp.net", *entries))
        )
        self._serve(self.live[instance.pk])

    def peer_reads(self, instance: Instance, chat_id: str, id_message: str) -> None:
        from tests.engines.waweb import neonize_events as ev

        wa_id = self._wa_id(instance, id_message)
        client = self._session(instance).client
        for kind in ("DELIVERED", "READ"):
            ev.feed(client, ev.receipt(chat_id.split("@")[0], [wa_id], kind))

    def peer_calls(self, instance: Instance, chat_id: str, outcome: str) -> str:
        from tests.engines.waweb import neonize_events as ev

        if outcome:
            raise NotObservable(
                f"a call ending with {outcome!r}: the waweb engine reports a call's offer and its end "
                "(CallOffer, CallTerminate), not that it was picked up"
            )
        call_id = f"CALL{next(_ids):012d}"
        self.network.calls[chat_id.split("@")[0]] = (call_id, "inc-call")
        ev.feed(self._session(instance).client, ev.call_offer(chat_id.split("@")[0], call_id))
        return call_id

    def call_seen(self, instance: Instance, chat_id: str) -> str:
        return self.network.calls.get(chat_id.split("@")[0], ("", "idle"))[1]
