"""The overview on the operator console's front page (templates/admin/index.html)."""

from __future__ import annotations

from django import template

from dashboard import operator

register = template.Library()


@register.simple_tag
def relay_overview() -> operator.Overview:
    return operator.overview()
