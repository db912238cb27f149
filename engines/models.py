"""The live-session command channel's tables (``engines.channel``).

They belong to no engine: any engine whose session lives in a process (a runner,
or one child process per account) is reached through them. Rows are short-lived: a
caller deletes its command once it has the answer, and a listener prunes what
callers left behind (a caller that died while waiting).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class CommandState(models.TextChoices):
    PENDING = "pending"  # written by the caller, not taken yet
    CLAIMED = "claimed"  # the session holding the lease at ``epoch`` is running it
    DONE = "done"  # answered: ``result``
    FAILED = "failed"  # answered with an error: ``result["error"]``
    REFUSED = "refused"  # addressed to an epoch the session no longer has
    EXPIRED = "expired"  # the caller stopped waiting before anyone took it


class SessionCommand(models.Model):
    """One command for the live session of instance ``instance_id``, addressed to
    the lease ``epoch`` the caller read. Only the session holding that epoch may
    claim it, and only before ``expires_at`` (the database's clock); a session at a
    later epoch refuses it. ``reply_to`` names the Redis channel the caller waits on
    (empty without Redis: the caller polls the row)."""

    instance_id = models.BigIntegerField()
    epoch = models.BigIntegerField()
    name = models.CharField(max_length=64)
    args = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=CommandState.choices, default=CommandState.PENDING)
    result = models.JSONField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)
    reply_to = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["instance_id", "state", "id"], name="engine_command_inbox_idx")]

    def __str__(self) -> str:
        return f"{self.name} for {self.instance_id}@{self.epoch} ({self.state})"


class CommandListener(models.Model):
    """The process that serves an instance's commands now: the session holding the
    lease at ``epoch``. It refreshes ``heartbeat_at`` while it listens and removes
    the row when it stops, so a caller can tell at once that nobody would answer
    (no row, another epoch, or a stale heartbeat) instead of waiting for a timeout."""

    instance_id = models.BigIntegerField(primary_key=True)
    epoch = models.BigIntegerField()
    runner_id = models.CharField(max_length=100, blank=True)
    pid = models.IntegerField(default=0)
    heartbeat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"listener of {self.instance_id}@{self.epoch} (pid {self.pid})"
