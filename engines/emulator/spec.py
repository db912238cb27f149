"""The emulator engine as the registry sees it (imports nothing heavy)."""

from __future__ import annotations

from engines.registry import EngineSpec

SPEC = EngineSpec(
    name="emulator",
    label="Emulator (sandbox)",
    transport="engines.emulator.transport.EmulatorTransport",
    session="engines.emulator.session.tick",
    sandbox="engines.emulator.sandbox.SANDBOX",
    capabilities=frozenset(
        {
            # Account and pairing
            "reboot",
            "logout",
            "qr",
            "scanqrcode",
            "getAuthorizationCode",
            "setProfilePicture",
            "getWaSettings",
            "startAuthorization",
            "sendAuthorizationCode",
            # Sending
            "sendMessage",
            "sendPoll",
            "sendFileByUpload",
            "sendFileByUrl",
            "sendLocation",
            "sendContact",
            "forwardMessages",
            "sendInteractiveButtons",
            "sendInteractiveButtonsReply",
            "sendTyping",
            "sendButtons",
            "sendTemplateButtons",
            "sendListMessage",
            "sendLink",
            # Groups
            "createGroup",
            "updateGroupName",
            "getGroupData",
            "addGroupParticipant",
            "removeGroupParticipant",
            "setGroupAdmin",
            "removeAdmin",
            "setGroupPicture",
            "leaveGroup",
            "updateGroupSettings",
            # Statuses
            "sendTextStatus",
            "sendVoiceStatus",
            "sendMediaStatus",
            "deleteStatus",
            # Chats, contacts and message changes
            "readChat",
            "checkWhatsapp",
            "getAvatar",
            "getContacts",
            "getContactInfo",
            "deleteMessage",
            "editMessage",
            "archiveChat",
            "unarchiveChat",
            "setDisappearingChat",
            "addContact",
            "editContact",
            "deleteContact",
            "getDeviceInfo",
            # Calls
            "callsState",
            "callsDial",
            "callsAccept",
            "callsReject",
            "callsHangUp",
            "callsRtc",
        }
    ),
)
