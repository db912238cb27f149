from django.apps import AppConfig


class InstancesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "instances"
    verbose_name = "Accounts and instances"

    def ready(self) -> None:
        # why local: the checks import models, which need the app registry loaded.
        from instances import checks  # noqa: F401 - registers the system checks
