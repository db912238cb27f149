"""The cloud engine's conformance harness (tests/engines/harness.py): the other side
is the fake Graph API (what Meta received) and Meta's signed webhooks (what the
customer does)."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from django.test import Client, override_settings

from engines import events
from instances.models import Account, Instance
from tests.engines.cloud.conftest import CREDENTIALS, PHONE_NUMBER_ID, TOKEN, sign, status, text_message
from tests.engines.cloud.fakegraph import FakeGraph, start
from tests.engines.harness import Harness, register

MESSAGE_TYPES = {
    "image": "imageMessage",
    "video": "videoMessage",
    "audio": "audioMessage",
    "document": "documentMessage",
    "sticker": "stickerMessage",
    "location": "locationMessage",
    "contacts": "contactMessage",
    "template": "templateMessage",
    "reaction": "reactionMessage",
}
INTERACTIVE = {"button": "buttonsMessage", "list": "listMessage"}


@register
class CloudHarness(Harness):
    engine = "cloud"
    # The Cloud API tells about messages, their statuses and (through Relay's
    # credentials check) the instance's state; nothing else reaches a business number.
    reports: ClassVar[frozenset[type]] = frozenset({events.MessageEvent, events.ReceiptEvent, events.StateEvent})
    _numbers = itertools.count(1)
    _wamids = itertools.count(1)

    def __init__(self) -> None:
        self.graph: FakeGraph | None = None

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        graph, server = start()
        graph.add_number(PHONE_NUMBER_ID, TOKEN, "+1 555-010-0200")
        self.graph = graph
        try:
            # Checks send several messages to one user at once: Relay's pacing of one
            # user (its own tests) would hold them back.
            with override_settings(
                CLOUD_API_BASE_URL=graph.url, CLOUD_API_VERSION=graph.version, CLOUD_API_RECIPIENT_INTERVAL_SECONDS=0
            ):
                yield
        finally:
            server.shutdown()
            server.server_close()

    @property
    def fake(self) -> FakeGraph:
        assert self.graph is not None, "the harness is not active"
        return self.graph

    # --- Instances ----------------------------------------------------------------------

    def authorized(self, account: Account) -> Instance:
        from instances import services

        instance = services.create_instance(account=account, engine="cloud", engine_options=CREDENTIALS)
        instance.refresh_from_db()
        assert instance.state == "authorized"
        return instance

    def unpaired(self, account: Account) -> Instance:
        """An instance whose token Meta does not accept yet (the state a cloud instance
        is in before its credentials work)."""
        from instances import services

        options = {**CREDENTIALS, "accessToken": "not-yet-a-system-user-token"}
        instance = services.create_instance(account=account, engine="cloud", engine_options=options)
        instance.refresh_from_db()
        assert instance.state == "notAuthorized"
        return instance

    def pair(self, instance: Instance) -> None:
        """The way a user links a cloud instance: the token becomes valid at Meta (a
        system user's token is generated), then a reboot checks it again."""
        from engines.cloud.models import CloudAccount
        from instances import services

        self.fake.numbers[PHONE_NUMBER_ID].token = CloudAccount.objects.get(instance_id=instance.pk).access_token
        services.reboot(Instance.objects.get(pk=instance.pk))

    # --- The other side ----------------------------------------------------------------

    def peer(self, instance: Instance, name: str = "Peer") -> str:
        return f"1650555{next(self._numbers) % 10_000:04d}@c.us"

    def nobody(self) -> str:
        pytest.skip(
            "the Cloud API accepts a message to a number without WhatsApp and reports it later, "
            "by a failed status webhook (131026): there is no synchronous noAccount"
        )

    def received(self, instance: Instance, chat_id: str, id_message: str) -> dict[str, Any] | None:
        from engines.cloud.models import CloudMessage

        wamid = (
            CloudMessage.objects.filter(instance_id=instance.pk, direction="out", id_message=id_message, chat_id=chat_id)
            .values_list("wamid", flat=True)
            .first()
        )
        sent = [s for s in self.fake.sent if wamid and s.wamid == wamid]
        if not sent:
            return None
        body = sent[0].body
        kind = str(body.get("type"))
        if kind == "text":
            return {"typeMessage": "textMessage", "textMessageData": {"textMessage": body["text"]["body"]}}
        # What the customer's WhatsApp shows, in GREEN-API's names; Meta's body beside it.
        if kind == "interactive":
            type_message = INTERACTIVE[str(body["interactive"]["type"])]
        else:
            type_message = MESSAGE_TYPES.get(kind, kind)
        return {"typeMessage": type_message, kind: body[kind]}

    def create_fields(self) -> dict[str, Any]:
        return {"cloud": CREDENTIALS}

    def seen_read(self, instance: Instance, chat_id: str, id_message: str) -> bool:
        """Meta marks a message read together with every earlier one of the chat."""
        from engines.cloud.models import CloudMessage

        received = list(
            CloudMessage.objects.filter(instance_id=instance.pk, direction="in", chat_id=chat_id)
            .order_by("created_at", "id")
            .values_list("id_message", "wamid")
        )
        marked = {s.body.get("message_id") for s in self.fake.sent if s.body.get("status") == "read"}
        ids = [i for i, _ in received]
        if id_message not in ids:
            return False
        position = ids.index(id_message)
        return any(wamid in marked for _, wamid in received[position:])

    # --- The other side acts -----------------------------------------------------------

    def _meta_posts(self, instance: Instance, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        r = Client().post(
            f"/engines/cloud/webhook/{instance.pk}", body, content_type="application/json",
            HTTP_X_HUB_SIGNATURE_256=sign(body),
        )
        assert r.status_code == 200, r.content

    def peer_sends_text(self, instance: Instance, chat_id: str, text: str) -> str:
        from engines.cloud.inbound import our_id

        wamid = f"wamid.PEER{next(self._wamids):06d}"
        self._meta_posts(instance, text_message(wamid, text, sender=chat_id.split("@")[0], name="John"))
        return our_id(wamid)

    def peer_reads(self, instance: Instance, chat_id: str, id_message: str) -> None:
        from engines.cloud.models import CloudMessage

        wamid = CloudMessage.objects.get(instance_id=instance.pk, direction="out", id_message=id_message).wamid
        for kind in ("delivered", "read"):
            self._meta_posts(instance, status(wamid, kind, recipient=chat_id.split("@")[0]))
