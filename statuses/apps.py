from django.apps import AppConfig


class StatusesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "statuses"

    def ready(self) -> None:
        # The engines' sink: viewers' receipts for our statuses.
        from engines import events, sink
        from statuses.services import consume_status_views

        sink.subscribe(events.StatusViewEvent, consume_status_views)
