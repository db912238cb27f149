"""The emulated WhatsApp network: phones, contacts, presence, messages, signals,
groups, statuses and calls, plus each emulator instance's session cursors.

These tables were ``instances_emu*`` before the emulator became an engine package;
migration 0001 adopts them as they were, 0002 renames them (no data is copied).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from instances.models import Account, Instance


class EmuSession(models.Model):
    """How far an emulator instance's session has read the network: the last
    ``EmuMessage`` and ``EmuSignal`` it took in. Set to the network head when the
    instance pairs (a new device sees messages from then on, not the history)."""

    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, primary_key=True, related_name="+")
    cursor = models.BigIntegerField(default=0)
    signal_cursor = models.BigIntegerField(default=0)


class CallRule(models.TextChoices):
    """What a simulated contact does when an instance calls it."""

    ANSWER = "answer"
    REJECT = "reject"
    SILENT = "silent"  # rings until the caller gives up or EMULATOR_CALL_RING_SECONDS


class EmuPhone(models.Model):
    """A WhatsApp account on the emulated network (a simulated phone).

    Instances that pair with the emulator link to one of these by ``phone``.
    ``registered=False`` numbers exist only to answer "no WhatsApp account".

    ``account`` is the tenant that claimed the number, by linking an instance to it
    or adding it as a simulated contact: only that account's instances may link it,
    script it or write as it (``engines.emulator.phones``). Numbers nobody claimed (created
    because someone messaged them) are free to claim.
    """

    phone = models.CharField(max_length=20, unique=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=100, blank=True)
    about = models.CharField(max_length=200, blank=True)
    registered = models.BooleanField(default=True)
    script = models.CharField(max_length=32, blank=True, help_text="Scripted behaviour, e.g. 'echo'.")
    # How this phone takes a call when it is a simulated contact (instances answer
    # with callsAccept / callsReject): see engines.emulator.calls.
    call_rule = models.CharField(max_length=16, choices=CallRule.choices, default=CallRule.ANSWER)
    avatar = models.CharField(max_length=300, blank=True, help_text="Storage path of a set picture.")
    # Business profile details getContactInfo reports (set by the control API).
    email = models.CharField(max_length=200, blank=True)
    products = models.JSONField(default=list, blank=True)
    # The handset the account runs on (getDeviceInfo); the control API can change it.
    platform = models.CharField(max_length=20, default="android")
    device_manufacturer = models.CharField(max_length=60, default="Relay")
    device_model = models.CharField(max_length=60, default="Emulated phone")
    os_version = models.CharField(max_length=20, default="14")
    wa_version = models.CharField(max_length=20, default="2.24.1")
    battery = models.PositiveSmallIntegerField(default=100)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"+{self.phone} {self.name}".strip()

    @property
    def wid(self) -> str:
        return f"{self.phone}@c.us"


class EmuContact(models.Model):
    """An address-book entry of an emulated phone (what getContacts will list)."""

    owner = models.ForeignKey(EmuPhone, on_delete=models.CASCADE, related_name="contacts")
    contact = models.ForeignKey(EmuPhone, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100, blank=True)
    # addContact's saveInAddressbook: False keeps the contact in WhatsApp only, not
    # in the phone's own address book (the control API's contacts list).
    in_addressbook = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "contact"], name="unique_emu_contact")
        ]


class PresenceKind(models.TextChoices):
    TYPING = "composing"
    RECORDING = "recording"
    AVAILABLE = "available"


class EmuPresence(models.Model):
    """What a phone shows others on the emulated network: typing or recording in a
    chat until ``until`` (sendTyping, typingTime, autoTyping), or online
    (keepOnlineStatus, ``chat_id`` empty). The peer's side reads it through the
    control API and the cabinet; ``last seen`` is the newest ``until`` passed."""

    phone = models.CharField(max_length=20)
    chat_id = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=16, choices=PresenceKind.choices)
    started_at = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField()

    class Meta:
        # Names kept from when the table was ``instances_emupresence``.
        indexes = [
            models.Index(fields=["chat_id", "until"], name="instances_e_chat_id_1ab135_idx"),
            models.Index(fields=["phone", "until"], name="instances_e_phone_ce8387_idx"),
        ]

    def __str__(self) -> str:
        return f"+{self.phone} {self.kind} {self.chat_id}".strip()


class EmuMute(models.Model):
    """A chat muted on an emulated phone (WhatsApp keeps mutes on the phone and
    syncs them to linked devices): getContactInfo's ``isMute`` and
    ``muteExpiration``. ``until`` None mutes it until unmuted. Set through the
    control API (``/mute``), as a person would on the phone."""

    phone = models.CharField(max_length=20)
    chat_id = models.CharField(max_length=100)
    until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["phone", "chat_id"], name="unique_emu_mute")]

    def __str__(self) -> str:
        return f"+{self.phone} muted {self.chat_id}"


class EmuLid(models.Model):
    """The LID (``<digits>@lid``) the network shows for a phone, recorded when it
    is first shown (getWaSettings, a chat in enableLidMode) so a chat id the
    client got back can be resolved to the phone when it sends to it."""

    lid = models.CharField(max_length=40, unique=True)
    phone = models.CharField(max_length=20, unique=True)

    def __str__(self) -> str:
        return f"{self.lid} = +{self.phone}"


class EmuChatTimer(models.Model):
    """A chat's disappearing-messages timer as one phone has it (setDisappearingChat
    sets it on both sides of a personal chat, on every member's side of a group):
    messages sent in the chat from then on expire ``expiration`` seconds after
    they were sent. 0 turns it off."""

    phone = models.CharField(max_length=20)
    chat_id = models.CharField(max_length=100)
    expiration = models.PositiveIntegerField(default=0)
    set_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["phone", "chat_id"], name="unique_emu_chat_timer")]

    def __str__(self) -> str:
        return f"+{self.phone} {self.chat_id}: {self.expiration}s"


class EmuMessage(models.Model):
    """A message carried by the emulated network: the "WhatsApp servers" log.

    ``(sender, id_message, recipient)`` is unique, which makes sending idempotent: a
    worker that crashed after the network accepted a message and retries it delivers
    nothing twice. A personal message is one row; a group message (``chat_id`` the
    ``@g.us`` id) is the sender's copy (``recipient=""``) plus one row per member who
    was in the group when it was sent.
    """

    sender = models.CharField(max_length=20, help_text="Sender phone (digits).")
    chat_id = models.CharField(max_length=100, help_text="Recipient chat id.")
    recipient = models.CharField(max_length=20, blank=True, help_text="Recipient phone for personal chats.")
    id_message = models.CharField(max_length=64)
    type_message = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    # What the recipient's WhatsApp shows: GREEN-API's messageData object.
    message_data = models.JSONField(default=dict)
    # The instance that sent it through our API (None: typed on a phone / by a contact).
    via_instance = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # Sent in a chat with a disappearing timer (setDisappearingChat): it leaves
    # both sides' chats then (engines.emulator.disappearing).
    expires_at = models.DateTimeField(null=True, blank=True)
    # When it expired for the sides that had it, while its recipient's device had
    # not taken it in yet: the network keeps it for that device (which drops it at
    # once on arrival) for up to ``disappearing.UNDELIVERED_KEPT``.
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # A group message is one row per recipient member (plus the sender's copy,
        # ``recipient=""``), all with the sender's id_message: the key includes the
        # recipient, and a retry still finds every copy by (sender, id_message).
        constraints = [
            models.UniqueConstraint(fields=["sender", "id_message", "recipient"], name="unique_emu_message_copy")
        ]
        indexes = [
            models.Index(fields=["recipient", "created_at"], name="instances_e_recipie_9ca54c_idx"),
            models.Index(fields=["expires_at"], name="emu_message_expiry_idx", condition=models.Q(expires_at__isnull=False)),
        ]


class SignalKind(models.TextChoices):
    CALL = "call"
    BLOCK = "block"
    GROUP = "group"


class EmuSignal(models.Model):
    """A non-message event on the emulated network: a call (offer, then its outcome,
    one row each), a block, or a group change (``group``: the phone joined, left, or
    the group's subject changed; ``payload`` holds ``groupId``, ``action``, ``subject``). ``to_phone``'s sessions take signals in with the
    messages, in network order (``created_at``), as ``incomingCall`` /
    ``incomingBlock``. ``payload`` holds the kind's details (``idCall``, ``status``)."""

    kind = models.CharField(max_length=16, choices=SignalKind.choices)
    from_phone = models.CharField(max_length=20)
    to_phone = models.CharField(max_length=20)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["to_phone", "id"], name="emu_signal_inbox_idx")]

    def __str__(self) -> str:
        return f"{self.kind} +{self.from_phone} -> +{self.to_phone}"


class EmuGroup(models.Model):
    """A group on the emulated network. ``owner`` (the creator, super admin) and
    ``subject_owner`` are phones; members are ``EmuGroupMember`` rows. The two
    settings are those of updateGroupSettings (True = only admins may)."""

    group_id = models.CharField(max_length=100, unique=True)
    owner = models.CharField(max_length=20)
    subject = models.CharField(max_length=100)
    subject_time = models.DateTimeField(default=timezone.now)
    subject_owner = models.CharField(max_length=20)
    invite_code = models.CharField(max_length=32)
    picture = models.CharField(max_length=300, blank=True, help_text="Storage path of the group picture.")
    only_admins_send = models.BooleanField(default=False)
    only_admins_edit = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.subject} ({self.group_id})"


class EmuGroupMember(models.Model):
    """A phone's membership of an emulated group, with its admin rights."""

    group = models.ForeignKey(EmuGroup, on_delete=models.CASCADE, related_name="members")
    phone = models.CharField(max_length=20)
    is_admin = models.BooleanField(default=False)
    is_super_admin = models.BooleanField(default=False)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "phone"], name="unique_emu_group_member")]
        indexes = [models.Index(fields=["phone"], name="emu_group_member_phone_idx")]


class EmuStatus(models.Model):
    """A status (story) posted on the emulated network by ``poster``: what its
    viewers' WhatsApp shows (``message_data``, GREEN-API's webhook messageData).

    ``(poster, id_message)`` is unique, so posting is idempotent like sending: a
    worker that retries after a crash posts nothing twice. A status lives until
    ``expires_at`` (24 h) or until its poster deletes it (``deleted_at``)."""

    poster = models.CharField(max_length=20, help_text="Poster phone (digits).")
    id_message = models.CharField(max_length=64)
    type_message = models.CharField(max_length=40)
    message_data = models.JSONField(default=dict)
    # The instance that posted it through our API (None: posted by a simulated phone).
    via_instance = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["poster", "id_message"], name="unique_emu_status")]
        indexes = [models.Index(fields=["expires_at"], name="emu_status_expiry_idx")]

    def __str__(self) -> str:
        return f"status {self.id_message} of +{self.poster}"


class EmuStatusView(models.Model):
    """One allowed viewer of a status: the audience is fixed when the status is
    posted. ``delivered_at``/``read_at`` are the viewer's receipts; ``revoke_seen_at``
    marks that a viewer's session took in the poster's delete."""

    status = models.ForeignKey(EmuStatus, on_delete=models.CASCADE, related_name="views")
    viewer = models.CharField(max_length=20, help_text="Viewer phone (digits).")
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    revoke_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["status", "viewer"], name="unique_emu_status_view")]
        indexes = [models.Index(fields=["viewer", "delivered_at"], name="emu_status_inbox_idx")]

class EmuCallState(models.TextChoices):
    RINGING = "ringing"
    ACTIVE = "active"
    ENDED = "ended"


class EmuCall(models.Model):
    """A voice call on the emulated network between two phones (the network's view;
    each side's journal row is ``journals.Call``).

    A phone is in at most one call that is not ``ended``: writers lock both phones'
    ``EmuPhone`` rows (in phone order) before checking and changing calls
    (``engines.emulator.calls``). ``reason`` says why it ended (``hangup``,
    ``rejected``, ``cancelled``, ``no-answer``, ``busy``)."""

    id_call = models.CharField(max_length=64, unique=True)
    caller = models.CharField(max_length=20)
    callee = models.CharField(max_length=20)
    state = models.CharField(max_length=16, choices=EmuCallState.choices, default=EmuCallState.RINGING)
    reason = models.CharField(max_length=16, blank=True)
    is_video = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["caller", "-created_at"], name="emu_call_caller_idx"),
            models.Index(fields=["callee", "-created_at"], name="emu_call_callee_idx"),
        ]

    def __str__(self) -> str:
        return f"call {self.id_call} +{self.caller} -> +{self.callee} ({self.state})"
