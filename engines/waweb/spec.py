"""The waweb engine as the registry sees it (imports nothing heavy: not neonize)."""

from __future__ import annotations

from engines.registry import EngineSpec

_APP_STATE = "neonize 0.5.2 cannot send whatsmeow's app-state patch for it (see docs/engines/waweb.md)"

STATUS_PARTICIPANTS = (
    "the waweb engine cannot choose a status's participants: whatsmeow posts every status to the "
    "account's status privacy audience (set on the phone). Omit participants to post to that audience"
)

SPEC = EngineSpec(
    name="waweb",
    label="WhatsApp Web (linked device)",
    transport="engines.waweb.transport.WawebTransport",
    session="engines.waweb.supervisor.tick",
    health="engines.waweb.health.session_health",
    requires=("neonize",),
    # whatsmeow only sends the presence: a session that waited out the typing time
    # would hold its one command thread (and the caller's timeout) for up to 20 s.
    types_in_queue=True,
    capabilities=frozenset(
        {
            # Account and pairing
            "qr",
            "scanqrcode",
            "getAuthorizationCode",
            "logout",
            "reboot",
            "setProfilePicture",
            "getWaSettings",
            # Sending (through the queue, in the session process)
            "sendMessage",
            "sendFileByUpload",
            "sendFileByUrl",
            "sendLocation",
            "sendContact",
            "sendPoll",
            "sendTyping",
            # Chats and contacts
            "checkWhatsapp",
            "getAvatar",
            "getContactInfo",
            "getContacts",
            "readChat",
            "forwardMessages",
            "deleteMessage",
            "editMessage",
            "setDisappearingChat",
            # Groups
            "createGroup",
            "getGroupData",
            "updateGroupName",
            "addGroupParticipant",
            "removeGroupParticipant",
            "setGroupAdmin",
            "removeAdmin",
            "setGroupPicture",
            "leaveGroup",
            "updateGroupSettings",
            # Statuses (to status@broadcast: the account's status privacy audience)
            "sendTextStatus",
            "sendVoiceStatus",
            "sendMediaStatus",
            "deleteStatus",
            # Calls: the incoming call ringing this device (whatsmeow carries no call media)
            "callsState",
            "callsReject",
        }
    ),
    refuses_status_participants=STATUS_PARTICIPANTS,
    # Settings this engine does not honour yet (docs/engines/waweb.md "Settings").
    inert_settings={
        "outgoingCallWebhook": "this engine journals only incoming calls (whatsmeow reports no calls placed from the phone)",
    },
    why_not={
        "archiveChat": _APP_STATE,
        "unarchiveChat": _APP_STATE,
        "startAuthorization": "a linked device cannot register a number by SMS; link it by QR code or pairing code",
        "sendAuthorizationCode": "a linked device cannot register a number by SMS; link it by QR code or pairing code",
        "getDeviceInfo": "WhatsApp does not tell a linked device about the phone's handset",
        "addContact": "whatsmeow cannot write the phone's address book",
        "editContact": "whatsmeow cannot write the phone's address book",
        "deleteContact": "whatsmeow cannot write the phone's address book",
        "callsDial": "whatsmeow cannot place calls",
        "callsAccept": "whatsmeow cannot take calls",
        "callsRtc": "whatsmeow cannot carry call media",
    },
)
