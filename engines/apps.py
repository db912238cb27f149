from django.apps import AppConfig


class EnginesConfig(AppConfig):
    """The engine contract's own tables: the live-session command channel
    (``engines.channel``). Engine implementations are apps of their own."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "engines"
    verbose_name = "Engine contract"
