"""factory_boy factories for the models tests need."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model

from engines.emulator import pairing
from instances import services
from instances.models import Account, Instance, State


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-Correct-Horse-1")


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    user = factory.SubFactory(UserFactory)
    name = factory.Faker("company")


def make_instance(account: Account | None = None, *, authorized: bool = False, phone: str = "", **kwargs: Any) -> Instance:
    """An emulator instance created through the real service (lease row, history).

    ``engine`` may name an engine this server has not installed (``waweb`` without
    neonize): the instance is created, then moved to it, as a database would hold
    one created before that engine was removed, so tests can check what such an
    instance answers."""
    engine = kwargs.pop("engine", "")
    instance = services.create_instance(account=account or AccountFactory(), **kwargs)
    if engine and engine != instance.engine:
        Instance.objects.filter(pk=instance.pk).update(engine=engine)
    if authorized:
        pairing.link_phone(instance, phone=phone or f"7900{instance.id % 10_000_000:07d}", name="Test Phone")
        services.change_state(instance, State.AUTHORIZED)
    instance.refresh_from_db()
    return instance
