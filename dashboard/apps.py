from django.apps import AppConfig


class DashboardConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "dashboard"

    def ready(self) -> None:
        # why local: the admin site, signals and forms import models, which need the
        # app registry loaded.
        from django.contrib import admin

        from dashboard import signals
        from dashboard.forms import ThrottledAdminLoginForm

        signals.connect()
        # One login lockout for the cabinet and the admin (dashboard.throttle).
        admin.site.login_form = ThrottledAdminLoginForm
