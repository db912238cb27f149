"""Developer tools a GREEN-API customer expects: a Postman collection and sample webhook
receivers, both generated or served from what this server really answers.

The collection is built from ``dashboard.console.methods()``, which reads the method
registry and each view's own serializers, so a new method appears in it without anyone
editing a JSON file, and a removed one disappears. The receivers are the files in
``docs/examples/``; ``tests/dashboard/test_devtools.py`` runs both against Relay.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

from dashboard import console
from dashboard.views import instance_view
from instances.models import Instance

POSTMAN_SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
EXAMPLES_DIR = Path(settings.BASE_DIR) / "docs" / "examples"
# The files of docs/examples that the cabinet serves, with their content types.
RECEIVERS = {
    "webhook_receiver.py": "text/x-python; charset=utf-8",
    "webhook_receiver.mjs": "text/javascript; charset=utf-8",
}
# Variables a request in the collection refers to; the values are this instance's.
HOST_VAR, MEDIA_VAR, ID_VAR, TOKEN_VAR, PARTNER_VAR = (
    "apiUrl", "mediaUrl", "idInstance", "apiTokenInstance", "partnerToken",
)


def _example_value(field: console.ConsoleField) -> Any:
    """A value a first request can be sent with: the console's example, typed."""
    if field.example:
        if field.kind == "json":
            try:
                return json.loads(field.example)
            except ValueError:
                return field.example
        return field.example
    if field.kind == "bool":
        return False
    if field.kind == "number":
        return 0
    if field.kind == "choice" and field.choices:
        return field.choices[0]
    if field.kind == "json":
        return None
    return ""


def _var(name: str) -> str:
    return "{{" + name + "}}"  # Postman's variable syntax


def _url(method: console.ConsoleMethod) -> dict[str, Any]:
    host = _var(MEDIA_VAR if method.host == "media" else HOST_VAR)
    if method.host == "partner":
        path = ["partner", method.name, _var(PARTNER_VAR)]
    else:
        path = ["waInstance" + _var(ID_VAR), method.name, _var(TOKEN_VAR)]
    if method.path_extra:
        path.append(":" + method.path_extra)
    url: dict[str, Any] = {"raw": host + "/" + "/".join(path), "host": [host], "path": path}
    if method.path_extra:
        url["variable"] = [{"key": method.path_extra, "value": "1"}]
    if method.query:
        url["query"] = [
            {"key": f.name, "value": str(_example_value(f)), "disabled": not f.required, "description": f.help}
            for f in method.query
        ]
        url["raw"] += "?" + "&".join(f"{q['key']}={q['value']}" for q in url["query"] if not q["disabled"])
    return url


def _body(method: console.ConsoleMethod) -> dict[str, Any] | None:
    if method.verb not in ("POST", "PUT", "PATCH", "DELETE") or not method.fields:
        return None
    if method.body == "binary":
        return {"mode": "file", "file": {"src": ""}}
    if method.body == "multipart":
        return {
            "mode": "formdata",
            "formdata": [
                {"key": f.name, "type": "file", "src": ""} if f.kind == "file"
                else {"key": f.name, "type": "text", "value": str(_example_value(f)), "disabled": not f.required}
                for f in method.fields
            ],
        }
    payload = {f.name: _example_value(f) for f in method.fields if f.required}
    return {"mode": "raw", "raw": json.dumps(payload, ensure_ascii=False, indent=2), "options": {"raw": {"language": "json"}}}


def _item(method: console.ConsoleMethod) -> dict[str, Any]:
    request: dict[str, Any] = {"method": method.verb, "url": _url(method), "header": []}
    body = _body(method)
    if body is not None:
        request["body"] = body
        if body["mode"] == "raw":
            request["header"].append({"key": "Content-Type", "value": "application/json"})
    optional = [f.name for f in method.fields if not f.required]
    description = f"GREEN-API method `{method.name}` ({method.section})."
    if optional:
        description += " Optional fields: " + ", ".join(optional) + "."
    return {"name": method.name, "request": request, "description": description}


def postman_collection(instance: Instance) -> dict[str, Any]:
    """A Postman v2.1 collection of every HTTP method this server implements, grouped by
    section, with the instance's host, id and tokens as collection variables."""
    folders: dict[str, list[dict[str, Any]]] = {}
    for method in console.methods():
        folders.setdefault(method.section, []).append(_item(method))
    api_url = str(settings.RELAY_API_URL).rstrip("/")
    media_url = str(settings.RELAY_MEDIA_URL).rstrip("/")
    return {
        "info": {
            "name": f"Relay — instance {instance.id}" + (f" ({instance.name})" if instance.name else ""),
            "description": "GREEN-API-compatible methods served by this Relay. Generated from the "
            "method registry; download it again after an upgrade.",
            "schema": POSTMAN_SCHEMA,
        },
        "variable": [
            {"key": HOST_VAR, "value": api_url},
            {"key": MEDIA_VAR, "value": media_url},
            {"key": ID_VAR, "value": str(instance.id)},
            {"key": TOKEN_VAR, "value": instance.api_token},
            {"key": PARTNER_VAR, "value": instance.account.partner_token},
        ],
        "item": [{"name": section, "item": items} for section, items in folders.items()],
    }


@instance_view
def postman_download(request: HttpRequest, instance: Instance) -> HttpResponse:
    body = json.dumps(postman_collection(instance), ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="relay-{instance.id}.postman_collection.json"'
    # The file carries the instance's token: never keep it in a shared cache.
    response["Cache-Control"] = "no-store"
    return response


@instance_view
def receiver_download(request: HttpRequest, instance: Instance, name: str) -> HttpResponse:
    if name not in RECEIVERS:
        raise Http404("No such example")
    response = HttpResponse((EXAMPLES_DIR / name).read_bytes(), content_type=RECEIVERS[name])
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
