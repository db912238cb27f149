"""A group message handed to the network twice (a worker retry after a crash)
reaches each member once."""

from __future__ import annotations

from rest_framework.test import APIClient

from engines.contract import OutgoingPayload
from engines.emulator.messages import emulator_send_many
from engines.emulator.models import EmuMessage
from instances.models import Instance
from tests.groups.helpers import ALICE, BOB, create, with_contacts


def test_a_retry_delivers_nothing_twice(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE, BOB)
    payload = OutgoingPayload(
        id_message="BAE5000000000001",
        chat_id=group_id,
        type_message="textMessage",
        data={"message": "once"},
        first_attempt=True,
    )
    retry = OutgoingPayload(**{**payload.__dict__, "first_attempt": False})
    first = emulator_send_many(
        sender_phone=authorized_instance.phone, via_instance=authorized_instance.pk, payloads=[payload]
    )
    again = emulator_send_many(
        sender_phone=authorized_instance.phone, via_instance=authorized_instance.pk, payloads=[retry]
    )
    assert [r.status for r in first + again] == ["sent", "sent"]
    rows = EmuMessage.objects.filter(id_message="BAE5000000000001")
    assert sorted(rows.values_list("recipient", flat=True)) == ["", ALICE, BOB]
