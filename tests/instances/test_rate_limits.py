import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rest_framework.test import APIClient

from instances import ratelimit
from instances.models import Account, Instance
from tests.conftest import method_url
from tests.factories import make_instance


class Clock:
    """The limiter's clock, frozen so a test never straddles a window boundary."""

    def __init__(self) -> None:
        self.now = float(int(time.time())) + 0.5

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Limits on (the conftest turns them off) and a frozen clock. Counters live in
    Redis when REDIS_URL is set, in this process otherwise: both paths run these tests."""
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMIT_OVERRIDES = {}
    fake = Clock()
    monkeypatch.setattr(ratelimit, "clock", fake.time)
    return fake


def statuses(client: APIClient, url: str, n: int) -> list[int]:
    return [client.get(url).status_code for _ in range(n)]


def test_the_second_request_in_a_second_is_429(
    api_client: APIClient, instance: Instance, clock: Clock
) -> None:
    url = method_url(instance, "getSettings")  # 1 request/s
    assert statuses(api_client, url, 3) == [200, 429, 429]
    r = api_client.get(url)
    assert r.content == b"Too Many Requests"


def test_the_next_window_is_allowed_again(api_client: APIClient, instance: Instance, clock: Clock) -> None:
    url = method_url(instance, "getSettings")
    assert statuses(api_client, url, 2) == [200, 429]
    clock.now += 1
    assert statuses(api_client, url, 2) == [200, 429]


def test_qr_allows_three_per_second(api_client: APIClient, instance: Instance, clock: Clock) -> None:
    assert statuses(api_client, method_url(instance, "qr"), 4) == [200, 200, 200, 429]


def test_limits_are_per_method(api_client: APIClient, instance: Instance, clock: Clock) -> None:
    assert statuses(api_client, method_url(instance, "getSettings"), 2) == [200, 429]
    assert statuses(api_client, method_url(instance, "getStateInstance"), 2) == [200, 429]
    assert api_client.get(method_url(instance, "getWaSettings")).status_code == 200


def test_spellings_of_a_method_share_one_limit(
    api_client: APIClient, instance: Instance, clock: Clock
) -> None:
    assert api_client.get(method_url(instance, "getSettings")).status_code == 200
    assert api_client.get(method_url(instance, "GETSETTINGS")).status_code == 429


def test_other_instances_are_unaffected(api_client: APIClient, account: Account, clock: Clock) -> None:
    first, second = make_instance(account), make_instance(account)
    assert statuses(api_client, method_url(first, "getSettings"), 2) == [200, 429]
    assert statuses(api_client, method_url(second, "getSettings"), 2) == [200, 429]


def test_rejected_requests_are_not_counted(api_client: APIClient, instance: Instance, clock: Clock) -> None:
    # Wrong token, unknown instance and wrong verb never reach the limiter.
    assert api_client.get(method_url(instance, "getSettings", token="0" * 50)).status_code == 401
    assert api_client.get(f"/waInstance1{instance.id}/getSettings/{instance.api_token}").status_code == 403
    assert api_client.post(method_url(instance, "getSettings")).status_code == 404
    assert api_client.options(method_url(instance, "getSettings")).status_code == 204
    assert statuses(api_client, method_url(instance, "getSettings"), 2) == [200, 429]


def test_a_limited_write_changes_nothing(api_client: APIClient, instance: Instance, clock: Clock) -> None:
    url = method_url(instance, "setSettings")
    assert api_client.post(url, {"incomingWebhook": "yes"}, format="json").status_code == 200
    assert api_client.post(url, {"outgoingWebhook": "yes"}, format="json").status_code == 429
    instance.refresh_from_db()
    assert instance.settings["outgoingWebhook"] is False


def test_unlisted_methods_are_unlimited(api_client: APIClient, instance: Instance, clock: Clock) -> None:
    url = method_url(instance, "getStateInstanceHistory")
    assert set(statuses(api_client, url, 10)) == {200}


def test_overrides_raise_a_limit(
    api_client: APIClient, instance: Instance, clock: Clock, settings: Any
) -> None:
    settings.RATE_LIMIT_OVERRIDES = {"GETSETTINGS": 3.0}  # names match case-insensitively
    assert statuses(api_client, method_url(instance, "getSettings"), 4) == [200, 200, 200, 429]


def test_overrides_can_limit_an_unlisted_method(
    api_client: APIClient, instance: Instance, clock: Clock, settings: Any
) -> None:
    settings.RATE_LIMIT_OVERRIDES = {"updateApiToken": 1.0}
    assert api_client.get(method_url(instance, "updateApiToken")).status_code == 200
    instance.refresh_from_db()
    assert api_client.get(method_url(instance, "updateApiToken")).status_code == 429


def test_a_limit_below_one_per_second_spans_several_seconds(
    api_client: APIClient, instance: Instance, clock: Clock, settings: Any
) -> None:
    settings.RATE_LIMIT_OVERRIDES = {"getSettings": 0.1}  # one request per 10 s
    clock.now = float(int(clock.now) // 10 * 10)
    url = method_url(instance, "getSettings")
    assert api_client.get(url).status_code == 200
    clock.now += 9
    assert api_client.get(url).status_code == 429
    clock.now += 1
    assert api_client.get(url).status_code == 200


def test_an_override_of_zero_removes_the_limit(
    api_client: APIClient, instance: Instance, clock: Clock, settings: Any
) -> None:
    settings.RATE_LIMIT_OVERRIDES = {"getSettings": 0}
    assert set(statuses(api_client, method_url(instance, "getSettings"), 5)) == {200}


def test_limits_can_be_turned_off(
    api_client: APIClient, instance: Instance, clock: Clock, settings: Any
) -> None:
    settings.RATE_LIMITS_ENABLED = False
    assert set(statuses(api_client, method_url(instance, "getSettings"), 5)) == {200}


# --- Shared counters in Redis ------------------------------------------------------------


@pytest.fixture
def redis_client(clock: Clock, settings: Any) -> Iterator[redis.Redis]:
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    ratelimit._redis.cache_clear()
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()
    ratelimit._redis.cache_clear()


def test_redis_holds_the_counters(
    api_client: APIClient, instance: Instance, redis_client: redis.Redis
) -> None:
    assert statuses(api_client, method_url(instance, "getSettings"), 2) == [200, 429]
    keys = list(redis_client.scan_iter(f"rl:{instance.id}:getSettings:*"))
    assert len(keys) == 1
    assert int(redis_client.get(keys[0]) or 0) == 2
    assert 0 < redis_client.ttl(keys[0]) <= 2  # windows expire on their own
    assert ratelimit._local == {}  # nothing was counted in this process


def test_redis_counters_are_shared_between_processes(
    api_client: APIClient, instance: Instance, redis_client: redis.Redis, clock: Clock
) -> None:
    # Another web process already used this second's allowance.
    redis_client.set(f"rl:{instance.id}:getSettings:{int(clock.now)}", 1, ex=5)
    assert api_client.get(method_url(instance, "getSettings")).status_code == 429


def test_without_redis_counters_are_local(
    api_client: APIClient, instance: Instance, clock: Clock, settings: Any
) -> None:
    settings.REDIS_URL = ""
    assert statuses(api_client, method_url(instance, "getSettings"), 2) == [200, 429]
    assert ratelimit._local[(instance.id, "getSettings")][1] == 2


def test_redis_down_falls_back_to_local_counters(
    api_client: APIClient, instance: Instance, clock: Clock, settings: Any
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    ratelimit._redis.cache_clear()
    try:
        assert statuses(api_client, method_url(instance, "getSettings"), 2) == [200, 429]
    finally:
        ratelimit._redis.cache_clear()
    assert ratelimit._local[(instance.id, "getSettings")][1] == 2
