"""The emulator's control API, under ``/api/v1/emulator/``: pair, script contacts,
trigger network events (incoming messages, calls, blocks, group changes, statuses)."""

from __future__ import annotations

from django.urls import path

from engines.emulator import api, groups_api, seed, statuses_api, triggers_api

urlpatterns = [
    path("instances/<int:id_instance>/scan-qr", api.ScanQr.as_view()),
    path("instances/<int:id_instance>/confirm-pairing-code", api.ConfirmPairingCode.as_view()),
    path("instances/<int:id_instance>/registration-code", api.RegistrationCode.as_view()),
    path("instances/<int:id_instance>/state", api.SetState.as_view()),
    path("instances/<int:id_instance>/contacts", api.Contacts.as_view()),
    path("instances/<int:id_instance>/presence", api.Presence.as_view()),
    path("instances/<int:id_instance>/mute", api.Mute.as_view()),
    path("instances/<int:id_instance>/seed", seed.Seed.as_view()),
    path("avatars/<str:phone>.png", api.avatar),
    path("instances/<int:id_instance>/statuses", statuses_api.ContactStatuses.as_view()),
    *triggers_api.urlpatterns,
    *groups_api.urlpatterns,
]
