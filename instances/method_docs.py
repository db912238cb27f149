"""What each wire method really does on the emulator, and the method table of
docs/api.md generated from it and the registry (a test keeps the page in step).

Other engines say what they do in their own docs (docs/engines/); a method outside
an engine's capabilities (``engines.registry``) answers a 400 naming it, and the
methods that only read or write Relay's own tables (settings, queues,
notifications, journals) work on every engine.
"""

from __future__ import annotations

from engines import registry as engine_registry
from instances import registry

# One line per method: the effect a caller can observe on the emulated network,
# in the journals or in the cabinet. Keep it honest: what is not done says so.
EMULATOR: dict[str, str] = {
    "getSettings": "reads the stored settings",
    "setSettings": "stores them; applied at once (see the settings notes below)",
    "getStateInstance": "the instance's state",
    "getStatusInstance": "online while authorized",
    "reboot": "drops the session lease: a runner opens a new session, starting → authorized (stateInstanceChanged each)",
    "logout": "unlinks the emulated phone; isLogout false when nothing was linked or pending",
    "qr": "a real, rotating QR code; scanning it links a phone",
    "getAuthorizationCode": "an 8-character code the control API confirms",
    "setProfilePicture": "sets the emulated phone's picture (peers' getAvatar shows it)",
    "getWaSettings": "the linked phone's profile; historySyncProgress is how much of its network traffic the session took in",
    "updateApiToken": "rotates the token",
    "getStateInstanceHistory": "every state the instance passed through",
    "getSessionHealth": "engine, state and whether a runner holds the session; health null (the emulator keeps no session health)",
    "startAuthorization": "registration code from the emulated network",
    "sendAuthorizationCode": "links the registered phone",
    "setSystemProxy": "resets proxyInstance to 'system proxy' (stored; only a waweb engine would connect through it)",
    "sendMessage": "delivered to the peer's phone; receipts delivered → read; typingTime/autoTyping: the peer sees typing first",
    "sendPoll": "delivered; peers' votes reach the sender",
    "sendFileByUpload": "stored and delivered with a download link",
    "sendFileByUrl": "fetched (SSRF-guarded) and delivered",
    "uploadFile": "stored; the link works for 15 days",
    "sendLocation": "delivered",
    "sendContact": "delivered",
    "forwardMessages": "delivered as forwarded",
    "sendInteractiveButtons": "delivered",
    "sendInteractiveButtonsReply": "delivered",
    "sendTyping": "the peer sees typing/recording (control API /presence); 400 when not authorized",
    "sendButtons": "delivered",
    "sendTemplateButtons": "delivered",
    "sendListMessage": "delivered",
    "sendLink": "delivered",
    "sendTemplate": "400: templates are the cloud engine's (Meta's approved templates, docs/engines/cloud.md)",
    "sendReaction": "400: a Relay extension of the cloud engine (docs/engines/cloud.md)",
    "receiveNotification": "the notification queue",
    "deleteNotification": "removes from the queue (path or body form)",
    "downloadFile": "the stored file's link",
    "getChatHistory": "the journal",
    "getMessage": "the journal",
    "lastIncomingMessages": "the journal",
    "lastOutgoingMessages": "the journal",
    "lastIncomingCalls": "the call journal",
    "lastOutgoingCalls": "the call journal; outgoing calls are journalled only with outgoingCallWebhook on",
    "showMessagesQueue": "the send queue",
    "clearMessagesQueue": "empties the send queue",
    "getMessagesCount": "the send queue's size",
    "getWebhooksCount": "the notification queue's size",
    "clearWebhooksQueue": "empties the notification queue",
    "createGroup": "a group on the emulated network",
    "updateGroupName": "members see it",
    "getGroupData": "the emulated group",
    "addGroupParticipant": "members see it",
    "removeGroupParticipant": "members see it",
    "setGroupAdmin": "members see it",
    "removeAdmin": "members see it",
    "setGroupPicture": "members see it",
    "leaveGroup": "members see it",
    "updateGroupSettings": "enforced on sends and edits",
    "sendTextStatus": "contacts see the status",
    "sendVoiceStatus": "contacts see the status",
    "sendMediaStatus": "contacts see the status",
    "deleteStatus": "contacts no longer see it",
    "getStatusStatistic": "who viewed it",
    "getIncomingStatuses": "contacts' statuses",
    "getOutgoingStatuses": "own statuses",
    "readChat": "read receipts reach the sender; an engine error is the answer (nothing marked)",
    "checkWhatsapp": "the emulated directory, by number or by a LID the network showed; chatId is the phone's stable @lid with enableLidMode on, else @c.us; phoneNumber; cached a day per instance (fromCache), force asks again",
    "getAvatar": "the peer's picture",
    "getContacts": "the phone's contacts",
    "getContactInfo": "the emulated contact's profile (email, products, lastSeen from its online spells); isMute/muteExpiration: the phone's mute (control API /mute)",
    "deleteMessage": "the peer sees it revoked",
    "editMessage": "the peer sees the edit",
    "archiveChat": "archived on every device of the account (getChats, cabinet); a chat without messages is refused",
    "unarchiveChat": "as archiveChat; an unknown chat is refused",
    "setDisappearingChat": "the timer reaches both sides (every member of a group; a chat named by its @lid too, each side under the id it sees the chat by); messages sent from then on leave both sides' journals when it runs out, counted from sending (no notification); one the peer's device had not taken in by then still reaches it later, delivered and gone at once, never read (docs/emulator.md)",
    "getChats": "the account's chats",
    "addContact": "saved on the emulated phone; saveInAddressbook false keeps it out of the phone's address book",
    "editContact": "as addContact",
    "deleteContact": "removed; false when it was not in the address book",
    "getDeviceInfo": "the emulated phone's handset (platform, model, battery)",
    "getInstances": "the account's instances",
    "createInstance": "a new instance",
    "deleteInstanceAccount": "deletes it",
    "callsState": "the emulated call",
    "callsGetIceServers": "ICE servers",
    "callsDial": "the peer's phone rings",
    "callsAccept": "the caller sees it answered",
    "callsReject": "the caller sees it rejected",
    "callsHangUp": "the other side sees it ended",
}


def _engine_cell(engine: str, method: str) -> str:
    """What ``engine`` does with ``method``, from its declared capabilities: the
    engine's own page says how; a refusal says why (the 400's text)."""
    spec = engine_registry.spec(engine)
    if method == "getSessionHealth" and spec.health:
        return f"yes: the session's own health ([{engine}](engines/{engine}.md#health))"
    if method in engine_registry.PRODUCT_METHODS:
        return "yes (Relay's own tables)"
    if spec.supports(method):
        return f"yes ([{engine}](engines/{engine}.md))"
    why = spec.why_not.get(method, "").replace("|", "\\|")  # a table cell
    return "400" + (f": {why}" if why else "")


def method_table() -> str:
    """The "Implemented methods" table of docs/api.md: the emulator's real effect,
    then one column per other engine (from its capabilities)."""
    others = [name for name in engine_registry.ENGINES if name != "emulator"]
    lines = [
        "| method | verb | section | status | rate limit (req/s) | emulator |" + "".join(f" {e} |" for e in others),
        "|---|---|---|---|---|---|" + "---|" * len(others),
    ]
    for spec, _ in registry.implemented():
        if spec.host == "ws":
            continue
        limit = "—" if spec.rate_limit is None else f"{spec.rate_limit:g}"
        lines.append(
            f"| `{spec.name}` | {', '.join(spec.verbs)} | {spec.section} | {spec.status} | {limit} | "
            f"{EMULATOR.get(spec.name, '')} |" + "".join(f" {_engine_cell(e, spec.name)} |" for e in others)
        )
    return "\n".join(lines) + "\n"
