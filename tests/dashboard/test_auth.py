"""Sign-up, log-in with throttling, log-out, password change and reset, CSRF."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from dashboard import throttle
from instances.models import Account
from tests.dashboard.conftest import PASSWORD
from tests.factories import UserFactory


def signup_data(**overrides: str) -> dict[str, str]:
    data = {
        "username": "newbie",
        "email": "newbie@example.com",
        "password1": "Sunny-Harbour-42",
        "password2": "Sunny-Harbour-42",
        "company": "Acme",
    }
    data.update(overrides)
    return data


def test_signup_creates_user_and_account_and_logs_in(client: Client, db: None) -> None:
    response = client.post(reverse("dashboard:signup"), signup_data())
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:instances")
    user = get_user_model().objects.get(username="newbie")
    assert Account.objects.get(user=user).name == "Acme"
    assert user.password.startswith(("pbkdf2", "argon2", "md5"))  # hashed, never plain
    assert client.get(reverse("dashboard:instances")).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password2": "Other-Harbour-42"}, "The two password fields didn"),
        ({"password1": "12345678", "password2": "12345678"}, "This password is entirely numeric"),
        ({"email": "not-an-email"}, "Enter a valid email address"),
        ({"username": ""}, "This field is required"),
    ],
)
def test_signup_shows_clear_errors(client: Client, db: None, overrides: dict[str, str], message: str) -> None:
    response = client.post(reverse("dashboard:signup"), signup_data(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_signup_refuses_a_used_email(client: Client, account: Account) -> None:
    response = client.post(reverse("dashboard:signup"), signup_data(email=account.user.email.upper()))
    assert "already exists" in response.content.decode()


def test_signup_can_be_closed(client: Client, db: None, settings: Any) -> None:
    settings.DASHBOARD_SIGNUP = False
    assert client.get(reverse("dashboard:signup")).status_code == 403


def test_login_and_logout(client: Client, account: Account) -> None:
    response = client.post(reverse("dashboard:login"), {"username": account.user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.get(reverse("dashboard:instances")).status_code == 200
    response = client.post(reverse("dashboard:logout"))
    assert response.status_code == 302
    assert client.get(reverse("dashboard:instances")).status_code == 302


def test_wrong_password_says_so(client: Client, account: Account) -> None:
    response = client.post(reverse("dashboard:login"), {"username": account.user.username, "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def unique_user() -> str:
    """Failure counters may live in a Redis shared with other test workers: a name of
    our own keeps their counters apart."""
    user = UserFactory(username=f"lock-{uuid.uuid4().hex[:12]}")
    return str(user.username)


def test_login_is_locked_after_repeated_failures(client: Client, db: None, settings: Any) -> None:
    settings.LOGIN_MAX_FAILURES = 3
    username = unique_user()
    throttle.clear(username, "127.0.0.1")
    for _ in range(3):
        client.post(reverse("dashboard:login"), {"username": username, "password": "wrong"})
    # Even the right password is refused while locked, with a message that says why.
    response = client.post(reverse("dashboard:login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address is not locked out by this one.
    other = Client(REMOTE_ADDR="10.9.8.7")
    assert other.post(reverse("dashboard:login"), {"username": username, "password": PASSWORD}).status_code == 302
    throttle.clear(username, "127.0.0.1")


def test_a_success_resets_the_failure_counter(client: Client, db: None, settings: Any) -> None:
    settings.LOGIN_MAX_FAILURES = 3
    username = unique_user()
    throttle.clear(username, "127.0.0.1")
    for _ in range(2):
        client.post(reverse("dashboard:login"), {"username": username, "password": "wrong"})
    assert client.post(reverse("dashboard:login"), {"username": username, "password": PASSWORD}).status_code == 302
    assert not throttle.is_locked(username, "127.0.0.1")
    throttle.clear(username, "127.0.0.1")


def test_password_change(owner_client: Client, account: Account) -> None:
    url = reverse("dashboard:password_change")
    assert owner_client.get(url).status_code == 200
    bad = owner_client.post(url, {"old_password": "wrong", "new_password1": "Brand-New-Pass-9", "new_password2": "Brand-New-Pass-9"})
    assert "Your old password was entered incorrectly" in bad.content.decode()
    good = owner_client.post(
        url, {"old_password": PASSWORD, "new_password1": "Brand-New-Pass-9", "new_password2": "Brand-New-Pass-9"}
    )
    assert good.status_code == 302
    account.user.refresh_from_db()
    assert account.user.check_password("Brand-New-Pass-9")


def test_password_reset_mails_a_link_that_works(client: Client, account: Account) -> None:
    response = client.post(reverse("dashboard:password_reset"), {"email": account.user.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Reset your Relay password"
    link = re.search(r"https?://[^/]+(/dashboard/password/reset/\S+/)", mail.outbox[0].body)
    assert link is not None
    confirm = client.get(link.group(1), follow=True)
    assert "Choose a new password" in confirm.content.decode()
    done = client.post(confirm.redirect_chain[-1][0], {"new_password1": "Fresh-Start-77", "new_password2": "Fresh-Start-77"})
    assert done.status_code == 302
    account.user.refresh_from_db()
    assert account.user.check_password("Fresh-Start-77")


def test_password_reset_does_not_reveal_unknown_addresses(client: Client, db: None) -> None:
    response = client.post(reverse("dashboard:password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert mail.outbox == []


def test_a_bad_reset_link_explains_itself(client: Client, db: None) -> None:
    response = client.get(reverse("dashboard:password_reset_confirm", args=["MQ", "bad-token"]))
    assert "This link has expired" in response.content.decode()


def test_forms_need_csrf_tokens(account: Account, instance: Any) -> None:
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(reverse("dashboard:login"), {"username": "x", "password": "y"}).status_code == 403
    strict.force_login(account.user)
    assert strict.post(reverse("dashboard:rename", args=[instance.id]), {"name": "x"}).status_code == 403
    page = strict.get(reverse("dashboard:instance", args=[instance.id])).content.decode()
    assert "csrfmiddlewaretoken" in page
    assert "X-CSRFToken" in page  # htmx requests carry it as a header


def test_security_settings_follow_the_environment(settings: Any) -> None:
    from django.conf import settings as live

    assert live.SESSION_COOKIE_HTTPONLY is True
    assert live.LOGIN_URL == "/dashboard/login/"
    assert "console" in live.EMAIL_BACKEND or "locmem" in live.EMAIL_BACKEND
