from django.apps import AppConfig

from engines import events, sink


class StatusesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "statuses"

    def ready(self) -> None:
        # why local: services imports models, which need the app registry loaded.
        from statuses.services import consume_status_posted, consume_status_views

        # The engines' sink: viewers' receipts for our statuses, and the audience
        # of each status the send path posted.
        sink.subscribe(events.StatusViewEvent, consume_status_views)
        sink.subscribe(events.StatusPostedEvent, consume_status_posted)
