"""The cloud engine: Meta's WhatsApp Business Cloud API behind the GREEN-API wire.

No live session: workers send over httpx (``transport``), Meta posts what happens to
a webhook (``webhook``), and credentials are checked on creation and reboot
(``services.connect``). See docs/engines/cloud.md.
"""
