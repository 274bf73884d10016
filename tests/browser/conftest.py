"""Browser tests: Debian's Chromium driven by Playwright against the running stack.

Chromium comes from the system (``/usr/bin/chromium``, or ``PETTYCASH_CHROMIUM``): Playwright
cannot download its own browsers here, and ``.ci/run`` installs Debian's ``chromium`` package
when it is missing. Each page a test visits is screenshotted into
``var/test-artifacts/screenshots/`` and checked with axe-core (vendored in ``vendor/``).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Response, sync_playwright

from services.gateway import identity
from services.gateway.passwords import Passwords
from shared.config import Settings
from shared.db.engine import Database

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
SCREENSHOTS = ROOT / "var" / "test-artifacts" / "screenshots"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}


def chromium_path() -> str:
    found = os.environ.get("PETTYCASH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Chromium is needed: apt-get install -y chromium (or set PETTYCASH_CHROMIUM)"
    return found


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path())
    yield browser
    browser.close()


@dataclass
class Visit:
    """A browser tab on the gateway that records what a person should never see."""

    page: Page
    base_url: str
    name: str
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    shots: int = 0

    def open(self, path: str) -> Page:
        self.page.goto(f"{self.base_url}{path}")
        return self.page

    def check(self, label: str) -> list[dict[str, Any]]:
        """Screenshot the page on a phone and on a desktop; check that every form that changes
        anything carries its CSRF token and that every control is reached with the Tab key;
        return the serious or critical axe-core violations on it."""
        self.shots += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        size = self.page.viewport_size or DESKTOP
        for width, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
            self.page.set_viewport_size(viewport)
            # Two frames, so the page is laid out and painted at the new width (a scrolled table
            # shot straight after the resize can come out blank).
            self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            shot = SCREENSHOTS / f"{self.name}-{self.shots:02d}-{label}-{width}.png"
            self.page.screenshot(path=shot, full_page=True)
        self.page.set_viewport_size(size)
        assert self.page.evaluate(UNGUARDED_FORMS) == [], "a form posts without its CSRF token"
        unreached = keyboard_unreached(self.page)
        assert unreached == [], f"not reached with the Tab key: {unreached}"
        violations: list[dict[str, Any]] = self.page.evaluate(
            "async () => (await axe.run(document)).violations"
            ".filter(v => ['serious', 'critical'].includes(v.impact))"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.html)}))"
        )
        return violations


# The forms that post without a non-empty csrf_token field (every post must carry one).
UNGUARDED_FORMS = """() => [...document.querySelectorAll('form')]
  .filter(f => (f.getAttribute('method') || 'get').toLowerCase() === 'post')
  .filter(f => !(f.querySelector('input[name=csrf_token]')?.value))
  .map(f => f.getAttribute('action'))"""

# Number the visible controls a keyboard user must reach; a radio group counts as one.
NUMBER_CONTROLS = """() => {
  const controls = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')]
    .filter(e => !e.disabled && e.getClientRects().length > 0);
  const seen = new Set();
  return controls.map((e, i) => {
    const group = e.type === 'radio' ? 'radio:' + e.name : 'c' + i;
    e.dataset.kb = group;
    if (seen.has(group)) return null;
    seen.add(group);
    return [group, (e.outerHTML || '').slice(0, 80)];
  }).filter(Boolean);
}"""


def keyboard_unreached(page: Page) -> list[str]:
    """The controls the Tab key does not reach from the top of the page (none, for a keyboard user)."""
    controls = dict(page.evaluate(NUMBER_CONTROLS))
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    reached: set[str] = set()
    for _ in range(len(controls) + 3):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("() => document.activeElement?.dataset?.kb || ''"))
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    return [html for group, html in controls.items() if group not in reached]


@pytest.fixture
def visit(chromium: Browser, stack: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``visit(viewport=PHONE)``: a new browser context (its own cookies) with axe-core loaded."""
    contexts = []
    visits: list[Visit] = []

    def open_visit(viewport: dict[str, int] = DESKTOP) -> Visit:
        context = chromium.new_context(viewport=viewport)
        context.add_init_script(path=str(AXE))  # as the browser's own script, outside the page's CSP
        contexts.append(context)
        page = context.new_page()
        name = re.sub(r"\W+", "-", request.node.name)[:60] + (f"-{len(visits)}" if visits else "")
        made = Visit(page, stack.base_url, name)
        page.on("console", lambda message: _console(made, message))
        page.on("response", lambda response: _response(made, response))
        page.on("dialog", lambda dialog: (made.dialogs.append(dialog.message), dialog.dismiss()))
        visits.append(made)
        return made

    yield open_visit
    for context in contexts:
        context.close()
    for made in visits:
        assert not made.dialogs, f"a script ran: {made.dialogs}"
        assert not made.console_errors, made.console_errors


def _console(visit: Visit, message: ConsoleMessage) -> None:
    # A page answered 4xx on purpose (a wrong password is a 401) is logged by the browser as a
    # resource that failed to load; what a page loads itself is checked in _response instead.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        visit.console_errors.append(message.text)


def _response(visit: Visit, response: Response) -> None:
    if response.request.resource_type != "document" and response.status >= 400:
        visit.console_errors.append(f"{response.status} for {response.url}")


@dataclass
class Person:
    username: str
    password: str
    user_id: str


@pytest.fixture
def person_factory(settings: Settings, dbs: dict[str, Database], tokens: dict[str, str]) -> Any:
    """``person_factory(["staff"], ["NBO-CBD"])``: a new user with a password."""

    def make(roles: list[str], branches: list[str]) -> Person:
        username = f"web-{roles[0][:5]}-{uuid.uuid4().hex[:6]}"
        password = "-".join(secrets.token_urlsafe(5) for _ in range(4))
        with dbs["gateway"].uow() as uow:
            user = identity.create_user(uow.session, username, f"Web {roles[0].title()}", roles, branches)
            user.password_hash = Passwords.from_settings(settings.identity).hash(password)
            uow.commit()
            return Person(username, password, str(user.id))

    return make
