"""Who may see what in the cabinet: a user reaches only their own account's instances.

Another user's instance answers 404, exactly like one that does not exist, so ids do
not leak across tenants (never 403)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import Http404

from instances.models import Account, Instance
from instances.services import ensure_account


def _pk(user: AbstractBaseUser | AnonymousUser) -> int:
    return int(user.pk) if user.pk is not None else -1


def account_of(user: AbstractBaseUser | AnonymousUser) -> Account:
    """The signed-in user's account (created on first use)."""
    assert isinstance(user, AbstractBaseUser)
    return ensure_account(user)


def access_instance(user: AbstractBaseUser | AnonymousUser, instance_id: int) -> Instance:
    """The user's live (not deleted) instance, or 404."""
    instance = (
        Instance.objects.filter(pk=instance_id, is_deleted=False, account__user_id=_pk(user))
        .select_related("account")
        .first()
    )
    if instance is None:
        raise Http404("No such instance")
    return instance


def owned_instances(user: AbstractBaseUser | AnonymousUser) -> list[Instance]:
    return list(
        Instance.objects.filter(account__user_id=_pk(user), is_deleted=False).order_by("created_at", "id")
    )
