from django.apps import AppConfig


class CloudConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "engines.cloud"
    label = "cloud"
    verbose_name = "Cloud API engine"
