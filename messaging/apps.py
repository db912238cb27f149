from django.apps import AppConfig

from engines import events, media, sink


class MessagingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "messaging"

    def ready(self) -> None:
        # why local: these modules import models, which need the app registry loaded.
        from instances import metrics
        from messaging import tasks  # noqa: F401 - registers the drain tasks messaging.wake enqueues by name
        from messaging.media import EngineMediaStore
        from messaging.selectors import send_queue_depth
        from messaging.services import consume_receipts, consume_state_changes

        # The engines' sink: receipts move outgoing messages on; a session that
        # becomes authorized releases the messages queued meanwhile.
        sink.subscribe(events.ReceiptEvent, consume_receipts)
        sink.subscribe(events.StateEvent, consume_state_changes)
        # Engines store what they receive, and read what they send, through this.
        media.provide(EngineMediaStore())
        # The send queue's depth at every /metrics scrape.
        metrics.add_queue_gauge(
            "relay_send_queue_depth", "Outgoing messages waiting to be sent (queued or being sent).", send_queue_depth
        )
