"""Keyboard reach, in a real browser: on every cabinet page, pressing Tab from the top
reaches every visible control (links, buttons, inputs, selects, disclosure summaries),
and focus is always visible to the eye (an outline or a box shadow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from instances.models import Account, Instance
from tests.conftest import LiveServer
from tests.dashboard.test_browser import CHROMIUM, browser_page
from tests.dashboard.test_browser_customer import SIZES, customer, login

__all__ = ["browser_page", "customer"]  # fixtures shared with the other browser tests

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

# Marks every control a person can see and use, keyed so that a radio group counts once
# (Tab enters a group once; arrows move inside it).
MARK_CONTROLS = """() => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]';
  const keys = new Set();
  let n = 0;
  for (const el of document.querySelectorAll(selector)) {
    if (el.disabled || el.getAttribute('tabindex') === '-1' || el.closest('[inert]')) continue;
    // checkVisibility also sees content-visibility:hidden (a closed <details>'s body).
    if (!el.checkVisibility({checkVisibilityCSS: true, checkOpacity: true})) continue;
    const key = el.type === 'radio' ? 'radio:' + el.name : 'c' + (n++);
    el.dataset.kbd = key;
    keys.add(key);
  }
  return [...keys];
}"""

FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || !el.dataset || !el.dataset.kbd) return null;
  const s = getComputedStyle(el);
  const visible = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
  return [el.dataset.kbd, visible, el.outerHTML.slice(0, 120)];
}"""


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_tab_reaches_every_control_on_every_page(
    live_asgi: LiveServer, browser_page: Any, customer: tuple[Account, Instance], size: str
) -> None:
    account, instance = customer
    page = browser_page
    page.set_viewport_size(SIZES[size])
    login(page, live_asgi, account)
    base = f"{live_asgi.url}/dashboard/instances/{instance.id}"
    pages = ["/dashboard/", "/dashboard/account/"] + [
        f"/dashboard/instances/{instance.id}/{tab}"
        for tab in ("", "settings/", "console/", "chats/", "notifications/", "webhooks/", "usage/", "sandbox/")
    ]
    assert base
    unreached: dict[str, list[str]] = {}
    invisible_focus: dict[str, list[str]] = {}
    for path in pages:
        page.goto(live_asgi.url + path)
        targets = set(page.evaluate(MARK_CONTROLS))
        page.evaluate("document.activeElement && document.activeElement.blur()")
        reached: set[str] = set()
        for _ in range(len(targets) * 2 + 10):
            page.keyboard.press("Tab")
            focused = page.evaluate(FOCUSED)
            if focused is None:
                continue
            key, visible, html = focused
            reached.add(key)
            if not visible:
                invisible_focus.setdefault(path, []).append(html)
            if reached >= targets:
                break
        missing = targets - reached
        if missing:
            unreached[path] = [
                page.evaluate(f"document.querySelector('[data-kbd=\"{k}\"]').outerHTML.slice(0, 120)") for k in missing
            ]
    assert not unreached, unreached
    assert not invisible_focus, invisible_focus
