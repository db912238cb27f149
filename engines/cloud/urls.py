from django.urls import path

from engines.cloud.webhook import webhook

urlpatterns = [
    path("webhook/<int:id_instance>", webhook, name="cloud-webhook"),
]
