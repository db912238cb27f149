"""``/engines/cloud/webhook/{idInstance}``: the callback URL pasted into Meta's app
settings. GET answers Meta's verification handshake; POST takes Meta's payloads,
only with a valid ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the app
secret, compared in constant time). Anything else is refused and nothing recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from engines.cloud import tasks
from engines.cloud.models import CloudAccount, CloudInbox
from instances.http import BadRequest, check_text_safe

log = logging.getLogger(__name__)


def _account(id_instance: int) -> CloudAccount | None:
    return (
        CloudAccount.objects.select_related("instance")
        .filter(instance_id=id_instance, instance__is_deleted=False, instance__engine="cloud")
        .first()
    )


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    """``sha256=<hex>`` of the raw body with the app secret, in constant time."""
    scheme, _, digest = header.partition("=")
    if scheme != "sha256" or not digest or not secret:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest.strip().lower())


@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook(request: HttpRequest, id_instance: int) -> HttpResponse:
    account = _account(id_instance)
    if account is None:
        return JsonResponse({"error": "no such cloud instance"}, status=404)
    if request.method == "GET":
        return _verify(request, account)
    header = request.headers.get("X-Hub-Signature-256", "")
    if not header:
        return JsonResponse({"error": "X-Hub-Signature-256 is missing"}, status=401)
    body = request.body
    if not signature_valid(account.app_secret, body, header):
        log.warning("cloud webhook for %s: bad signature", id_instance)
        return JsonResponse({"error": "X-Hub-Signature-256 does not match the app secret"}, status=403)
    try:
        payload = json.loads(body)
    except ValueError:
        return JsonResponse({"error": "the body is not JSON"}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"error": "the body is not a JSON object"}, status=400)
    try:
        check_text_safe(payload)  # PostgreSQL's jsonb refuses NUL and lone surrogates
    except BadRequest as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    # Committed before Meta hears 200; taken in by a worker (media downloads can take
    # seconds, and Meta re-posts a webhook that does not answer in time).
    row = CloudInbox.objects.create(instance_id=account.instance_id, payload=payload)
    tasks.offer_inbox(account.instance_id)
    return JsonResponse({"queued": row.pk})


def _verify(request: HttpRequest, account: CloudAccount) -> HttpResponse:
    """Meta's subscription check: echo ``hub.challenge`` when the token is ours."""
    token = request.GET.get("hub.verify_token", "")
    mode = request.GET.get("hub.mode", "")
    expected = account.verify_token
    if mode != "subscribe" or not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        return HttpResponse("verify token mismatch", status=403, content_type="text/plain")
    return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
