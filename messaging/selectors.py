"""Shared reads of the send queue."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from django.db.models import Count, Q

from messaging.models import PENDING_STATUSES, OutgoingMessage, SendAttempt

ATTEMPT_ERROR = "error"  # SendAttempt.outcome of a transient engine failure


class AttemptTally(NamedTuple):
    """What the send attempt log says: ``handed`` rows (every hand-over to an
    engine), ``messages`` distinct messages handed over, ``succeeded`` messages the
    engine answered at least once (any outcome but a transient ``error``), and
    ``duplicated`` messages it answered more than once: each of those went out (or
    was refused) twice, which must never happen."""

    handed: int
    messages: int
    succeeded: int
    duplicated: int


def send_attempt_tally(*, instance_ids: Iterable[int] | None = None) -> AttemptTally:
    """Count the attempt log (all of it, or the given instances'); the benches and
    the fault suite assert ``duplicated == 0`` from it."""
    rows = SendAttempt.objects.all()
    if instance_ids is not None:
        rows = rows.filter(instance_id__in=list(instance_ids))
    per_message = rows.values("instance_id", "id_message").annotate(
        answered=Count("pk", filter=~Q(outcome=ATTEMPT_ERROR))
    )
    handed = rows.count()
    messages = succeeded = duplicated = 0
    for row in per_message:
        messages += 1
        succeeded += row["answered"] >= 1
        duplicated += row["answered"] > 1
    return AttemptTally(handed, messages, succeeded, duplicated)


def send_queue_depth() -> int:
    """Outgoing messages waiting to be sent (queued or being sent), all instances."""
    return OutgoingMessage.objects.filter(status__in=PENDING_STATUSES).count()
