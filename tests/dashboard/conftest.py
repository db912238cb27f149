"""Cabinet fixtures: a signed-in owner, a stranger, and their instances."""

from __future__ import annotations

import pytest
from django.test import Client

from instances.models import Account, Instance
from tests.factories import AccountFactory, make_instance

PASSWORD = "pw-Correct-Horse-1"


@pytest.fixture
def owner_client(client: Client, account: Account) -> Client:
    client.force_login(account.user)
    return client


@pytest.fixture
def stranger(db: None) -> Account:
    return AccountFactory()


@pytest.fixture
def stranger_instance(stranger: Account) -> Instance:
    return make_instance(stranger)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives headless Chromium (skipped without /usr/bin/chromium)")
