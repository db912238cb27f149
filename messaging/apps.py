from django.apps import AppConfig


class MessagingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "messaging"

    def ready(self) -> None:
        # The engines' sink: receipts move outgoing messages on; a session that
        # becomes authorized releases the messages queued meanwhile.
        from engines import events, media, sink
        from messaging.media import EngineMediaStore
        from messaging.services import consume_receipts, consume_state_changes

        sink.subscribe(events.ReceiptEvent, consume_receipts)
        sink.subscribe(events.StateEvent, consume_state_changes)
        # Engines store what they receive, and read what they send, through this.
        media.provide(EngineMediaStore())
