from django.apps import AppConfig


class EmulatorConfig(AppConfig):
    """The emulator engine (a simulated WhatsApp network in the database)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "engines.emulator"
    label = "emulator"
    verbose_name = "Emulator engine"
