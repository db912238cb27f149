from django.apps import AppConfig
from django.db.models.signals import pre_save


class JournalsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "journals"

    def ready(self) -> None:
        # Here rather than in journals.rendering: every process that writes journal
        # rows (web, worker, session runner) loads the apps, not the URL conf.
        from journals.models import JournalMessage
        from journals.rendering import fill_journal_json

        pre_save.connect(fill_journal_json, sender=JournalMessage, dispatch_uid="journals.fill_journal_json")

        # The engines' sink: what sessions report becomes journals and notifications.
        from engines import events, sink
        from journals.services import consume_engine_events

        for kind in (
            events.MessageEvent,
            events.StateEvent,
            events.CallEvent,
            events.BlockEvent,
            events.GroupEvent,
            events.HistoryEvent,
        ):
            sink.subscribe(kind, consume_engine_events)

        from journals.chats import consume_disappearing

        sink.subscribe(events.DisappearingEvent, consume_disappearing)
        sink.subscribe(events.ExpiredEvent, consume_disappearing)
