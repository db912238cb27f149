from django.apps import AppConfig

from engines import events, sink


class WawebConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "engines.waweb"
    label = "waweb"
    verbose_name = "WhatsApp Web engine"

    def ready(self) -> None:
        # QR codes and pairing codes are the session's asynchronous answers: they
        # reach the REST ``qr`` method, the ``scanqrcode`` socket and the cabinet
        # through the sink, kept in this engine's own session row.
        # why local: these import models, which need the app registry loaded.
        from engines.waweb.codes import consume_pairing_codes, consume_qr_codes
        from engines.waweb.health import SessionCollector
        from instances import metrics

        sink.subscribe(events.QrEvent, consume_qr_codes)
        sink.subscribe(events.PairingCodeEvent, consume_pairing_codes)
        # Session health on /metrics (read at scrape time; needs no neonize).
        metrics.add_collector("waweb-sessions", SessionCollector())
