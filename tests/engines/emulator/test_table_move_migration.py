"""The emulator's move into its own app keeps a database made before it: the
network's rows stay (their tables are adopted, then renamed) and every emulator
instance keeps its session cursors. Runs on PostgreSQL and on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("instances", "0009_emulated_presence_device_and_contact_details"), ("emulator", None)]


def _migrate(targets: list[tuple[str, str | None]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


def _migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def before_the_move(transactional_db: None) -> Iterator[Any]:
    """The database as the last release before the move left it; the latest schema
    again afterwards, whatever the test did (later tests share this database)."""
    try:
        yield _migrate(BEFORE)
    finally:
        _migrate_to_latest()


def test_a_database_from_before_the_move_keeps_its_network_and_cursors(before_the_move: Any) -> None:
    old = before_the_move
    user = old.get_model("auth", "User").objects.create(username="before-the-move")
    account = old.get_model("instances", "Account").objects.create(user=user, partner_token="gac.before")
    instance = old.get_model("instances", "Instance").objects.create(
        id=7700000001, account=account, engine="emulator", phone="79990000001", wid="79990000001@c.us",
        emulator_cursor=41, emulator_signal_cursor=7,
    )
    phone_model = old.get_model("instances", "EmuPhone")
    alice = phone_model.objects.create(phone="79990000001", name="Alice", account=account)
    bob = phone_model.objects.create(phone="79990000002", name="Bob")
    old.get_model("instances", "EmuContact").objects.create(owner=alice, contact=bob, name="Bobby")
    old.get_model("instances", "EmuMessage").objects.create(
        sender="79990000002", chat_id="79990000001@c.us", recipient="79990000001",
        id_message="BEFORE1", type_message="textMessage", payload={"message": "hi"},
    )

    _migrate_to_latest()

    from engines.emulator.models import EmuContact, EmuMessage, EmuPhone, EmuSession

    assert EmuMessage._meta.db_table == "emulator_emumessage"
    assert EmuMessage.objects.get().id_message == "BEFORE1"
    assert EmuContact.objects.get().contact.name == "Bob"
    assert EmuPhone.objects.get(phone="79990000001").account_id == account.pk
    session = EmuSession.objects.get(instance_id=instance.pk)
    assert (session.cursor, session.signal_cursor) == (41, 7)
    tables = set(connection.introspection.table_names())
    assert "emulator_emuphone" in tables and "instances_emuphone" not in tables
    columns = {c.name for c in connection.introspection.get_table_description(connection.cursor(), "instances_instance")}
    assert "emulator_cursor" not in columns
