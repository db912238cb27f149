from django.apps import AppConfig
from django.db.models.signals import pre_save

from engines import events, sink


class JournalsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "journals"

    def ready(self) -> None:
        # why local: these modules import models, which need the app registry loaded.
        from instances import metrics
        from journals import tasks  # noqa: F401 - registers the webhook tasks journals.webhooks enqueues by name
        from journals.chats import consume_disappearing
        from journals.models import JournalMessage
        from journals.rendering import fill_journal_json
        from journals.selectors import chat_has_messages, notification_queue_depth
        from journals.services import consume_engine_events, consume_send_queued, consume_send_reports
        from messaging import pacing

        # Here rather than in journals.rendering: every process that writes journal
        # rows (web, worker, session runner) loads the apps, not the URL conf.
        pre_save.connect(fill_journal_json, sender=JournalMessage, dispatch_uid="journals.fill_journal_json")

        # The engines' sink: what sessions report becomes journals and notifications.
        for kind in (
            events.MessageEvent,
            events.StateEvent,
            events.CallEvent,
            events.BlockEvent,
            events.GroupEvent,
            events.HistoryEvent,
        ):
            sink.subscribe(kind, consume_engine_events)
        sink.subscribe(events.DisappearingEvent, consume_disappearing)
        sink.subscribe(events.ExpiredEvent, consume_disappearing)
        # The send path's own events: messaging reports through the sink, so it
        # never imports journals.
        sink.subscribe(events.SendReport, consume_send_reports)
        sink.subscribe(events.SendQueuedEvent, consume_send_queued)
        sink.subscribe(events.StatusEvent, consume_engine_events)  # editMessage refused
        # The send queue's new-chat cap asks the journals whether a chat is new.
        pacing.provide_journal_lookup(chat_has_messages)
        # The notification queue's depth at every /metrics scrape.
        metrics.add_queue_gauge(
            "relay_notification_queue_depth",
            "Notifications waiting for receiveNotification or webhook delivery.",
            notification_queue_depth,
        )
