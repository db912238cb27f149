"""events.prime_watched: one Redis read answers ``watched`` for many instances (a
drain sweep's status transaction asks for every instance it touched)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from instances import events


def test_one_read_answers_for_every_instance(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if not settings.REDIS_URL:
        pytest.skip("watched pages are kept in Redis (REDIS_URL)")
    events._watched.clear()
    open_page, closed_page = 990_000_001, 990_000_002
    events.watch(open_page)
    try:
        events.prime_watched([open_page, closed_page])

        class Down:
            def exists(self, *_: Any) -> int:
                raise redis.ConnectionError("no second read")

        monkeypatch.setattr(events, "_redis", lambda: Down())
        # Answered from the one read (a second read would say "watched" for both).
        assert events.watched(open_page) is True
        assert events.watched(closed_page) is False
    finally:
        monkeypatch.undo()
        events._redis().delete(events._watch_key(open_page))
        events._watched.clear()
