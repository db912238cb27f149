"""The cloud engine as the registry sees it (imports nothing heavy)."""

from __future__ import annotations

from engines.registry import EngineSpec

_CREDENTIALS = "Cloud API instances are linked by their credentials (phoneNumberId and accessToken), not by a device"
_NOT_IN_API = "Meta's Cloud API has no such operation"

SPEC = EngineSpec(
    name="cloud",
    label="Meta Cloud API",
    transport="engines.cloud.transport.CloudTransport",
    requires=("httpx",),
    configure="engines.cloud.services.configure",
    connect="engines.cloud.services.connect",
    describe="engines.cloud.services.describe",
    capabilities=frozenset(
        {
            # Account: a reboot checks the credentials again.
            "reboot",
            # Sending (through the queue; docs/engines/cloud.md maps each to Meta's types)
            "sendMessage",
            "sendLink",
            "sendFileByUpload",
            "sendFileByUrl",
            "sendLocation",
            "sendContact",
            "sendInteractiveButtonsReply",
            "sendButtons",
            "sendListMessage",
            "sendTemplate",
            "sendReaction",
            # Read marks: Meta marks a message (and those before it) read.
            "readChat",
        }
    ),
    # Settings no Cloud API number can honour (docs/engines/cloud.md "Settings").
    inert_settings={
        "keepOnlineStatus": "a Cloud API number has no online presence to keep",
        "autoTyping": "Meta's Cloud API shows typing only together with a read mark of a received message",
        "enableLidMode": "Meta's Cloud API names chats by phone number only",
        "enableMessagesHistory": "a Cloud API number has no phone whose earlier messages could be synced",
        "outgoingCallWebhook": "Relay does not bridge Cloud API calls",
        "proxyInstance": "Relay reaches Meta's Graph API directly; a Cloud API number keeps no WhatsApp connection to proxy",
    },
    why_not={
        "qr": _CREDENTIALS + "; paste them in createInstance's 'cloud' field or the cabinet",
        "scanqrcode": _CREDENTIALS,
        "getAuthorizationCode": _CREDENTIALS,
        "startAuthorization": _CREDENTIALS + "; register the number in Meta's WhatsApp Manager",
        "sendAuthorizationCode": _CREDENTIALS + "; register the number in Meta's WhatsApp Manager",
        "logout": _CREDENTIALS + "; delete the instance or revoke the token in Meta's Business settings",
        "setProfilePicture": "the business profile picture is set in Meta's WhatsApp Manager",
        "getWaSettings": _CREDENTIALS,
        "getDeviceInfo": "a Cloud API number runs on Meta's servers, not on a handset",
        "sendPoll": "Meta's Cloud API cannot send polls",
        "forwardMessages": "Meta's Cloud API cannot forward messages",
        "sendTyping": "Meta's Cloud API shows typing only together with a read mark of a received message",
        "sendTemplateButtons": "use sendTemplate with a template approved in WhatsApp Manager",
        "sendInteractiveButtons": (
            "Meta's free-form messages carry no call or copy-code buttons (only approved templates do: "
            "sendTemplate); quick replies are sendInteractiveButtonsReply"
        ),
        "sendTextStatus": "Meta's Cloud API cannot post statuses",
        "sendVoiceStatus": "Meta's Cloud API cannot post statuses",
        "sendMediaStatus": "Meta's Cloud API cannot post statuses",
        "deleteStatus": "Meta's Cloud API cannot post statuses",
        "deleteMessage": "Meta's Cloud API cannot delete sent messages",
        "editMessage": "Meta's Cloud API cannot edit sent messages",
        "archiveChat": "a Cloud API number has no chat list to archive in",
        "unarchiveChat": "a Cloud API number has no chat list to archive in",
        "setDisappearingChat": "Meta's Cloud API has no disappearing messages",
        "checkWhatsapp": "Meta's Cloud API does not tell whether a number has WhatsApp",
        "getAvatar": "Meta's Cloud API does not show other users' pictures",
        "getContactInfo": "Meta's Cloud API does not show other users' profiles",
        "getContacts": "a Cloud API number has no address book",
        "addContact": "a Cloud API number has no address book",
        "editContact": "a Cloud API number has no address book",
        "deleteContact": "a Cloud API number has no address book",
        "createGroup": "Relay does not drive Meta's Groups API (participants join by invite link only)",
        "updateGroupName": _NOT_IN_API,
        "getGroupData": _NOT_IN_API,
        "addGroupParticipant": "Meta's Groups API cannot add participants; they join by invite link",
        "removeGroupParticipant": _NOT_IN_API,
        "setGroupAdmin": _NOT_IN_API,
        "removeAdmin": _NOT_IN_API,
        "setGroupPicture": _NOT_IN_API,
        "leaveGroup": _NOT_IN_API,
        "updateGroupSettings": _NOT_IN_API,
        "callsState": "Relay does not bridge Cloud API calls",
        "callsDial": "Relay does not bridge Cloud API calls",
        "callsAccept": "Relay does not bridge Cloud API calls",
        "callsReject": "Relay does not bridge Cloud API calls",
        "callsHangUp": "Relay does not bridge Cloud API calls",
        "callsRtc": "Relay does not bridge Cloud API calls",
    },
)
