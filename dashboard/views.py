"""The product's front door. The full cabinet is built on top of this page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/home.html", {"api_url": settings.RELAY_API_URL})
