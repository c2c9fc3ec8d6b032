"""The UI-test skill: a configured browser flow, run with Playwright on Debian's Chromium.

Steps are small dicts from the map, checked before the browser starts::

    {goto: "/"}  {fill: "#amount", value: "42"}  {click: "button[type=submit]"}
    {expect_text: "Payment confirmed"}  {wait_for: "#receipt"}  {press: "#amount", key: "Enter"}

Each step becomes a ``Check``; the first failing step ends the flow, and a
screenshot is taken either way. The system's Chromium is used (never a
downloaded browser); when it is missing, the result says how to install it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from rootloop.errors import UserError
from rootloop.models import Check, UiTestResult
from rootloop.models.maps import UiTestSpec
from rootloop.skills.load_test import require_loopback

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: step kind -> the extra keys it needs
STEPS: dict[str, tuple[str, ...]] = {
    "goto": (),
    "fill": ("value",),
    "click": (),
    "expect_text": (),
    "wait_for": (),
    "press": ("key",),
}
STEP_TIMEOUT = 10.0


def parse_steps(spec: UiTestSpec) -> list[tuple[str, str, dict[str, str]]]:
    """(kind, argument, extras) per step; a clear ``UserError`` for a malformed one."""
    steps = list(spec.steps) or [{"goto": spec.url}]
    if spec.expect_text:
        steps.append({"expect_text": spec.expect_text})
    out = []
    for i, step in enumerate(steps):
        kinds = [k for k in step if k in STEPS]
        if len(kinds) != 1:
            raise UserError(
                f"ui_test.steps[{i}]: {step!r} needs exactly one of "
                f"{', '.join(STEPS)} (e.g. {{click: 'button[type=submit]'}})."
            )
        kind = kinds[0]
        extras = {k: v for k, v in step.items() if k != kind}
        missing = [k for k in STEPS[kind] if k not in extras]
        unknown = [k for k in extras if k not in STEPS[kind]]
        if missing or unknown:
            need = f"needs '{missing[0]}'" if missing else f"does not take '{unknown[0]}'"
            raise UserError(f"ui_test.steps[{i}]: the '{kind}' step {need}.")
        out.append((kind, str(step[kind]), extras))
    return out


def _label(kind: str, arg: str, extras: dict[str, str]) -> str:
    if kind == "fill":
        return f"fill {arg} = {extras['value']}"
    if kind == "press":
        return f"press {extras['key']} in {arg}"
    if kind == "expect_text":
        return f"expect text '{arg}'"
    return f"{kind.replace('_', ' ')} {arg}"


async def run_ui_test(
    spec: UiTestSpec,
    screenshot_path: str | Path,
    *,
    executable_path: str = CHROMIUM,
    step_timeout: float = STEP_TIMEOUT,
    allow_remote: bool = False,
) -> UiTestResult:
    """Run the flow; a missing browser or a failing step is a failed result, not an error."""
    require_loopback(spec.url, "ui_test.url", allow_remote)
    steps = parse_steps(spec)
    for kind, arg, _ in steps:
        if kind == "goto":
            require_loopback(urljoin(spec.url, arg), "ui_test goto", allow_remote)
    start = time.perf_counter()
    if not (Path(executable_path).is_file() or shutil.which(executable_path)):
        return _failed(
            spec,
            start,
            f"Chromium not found at {executable_path}: install it "
            "with 'apt-get install chromium' (rootloop never downloads a browser)",
        )
    try:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright
    except ImportError:
        return _failed(spec, start, "the 'playwright' package is missing: pip install playwright")

    shot = Path(screenshot_path)
    shot.parent.mkdir(parents=True, exist_ok=True)
    checks: list[Check] = []
    taken: str | None = None
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=executable_path, args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 800})
                deadline = start + spec.timeout
                for kind, arg, extras in steps:
                    left = deadline - time.perf_counter()
                    name = _label(kind, arg, extras)
                    if left <= 0:
                        checks.append(
                            Check(
                                name=name,
                                passed=False,
                                detail=f"flow timeout of {spec.timeout:g} s spent",
                            )
                        )
                        break
                    ms = min(step_timeout, left) * 1000
                    check = await _step(page, spec.url, kind, arg, extras, ms, PlaywrightError)
                    checks.append(check.model_copy(update={"name": name}))
                    if not check.passed:
                        break
                try:
                    await page.screenshot(path=str(shot), full_page=True, timeout=5000)
                    taken = str(shot)
                except PlaywrightError:
                    taken = None
            finally:
                await browser.close()
    except PlaywrightError as exc:
        checks.append(Check(name="browser", passed=False, detail=_short(exc)))
    passed = bool(checks) and all(c.passed for c in checks) and len(checks) == len(steps)
    return UiTestResult(
        url=spec.url,
        passed=passed,
        steps=checks,
        screenshot=taken,
        duration_s=round(time.perf_counter() - start, 3),
    )


async def _step(
    page: Any,
    base: str,
    kind: str,
    arg: str,
    extras: dict[str, str],
    ms: float,
    error: type[Exception],
) -> Check:
    try:
        if kind == "goto":
            resp = await page.goto(urljoin(base, arg), timeout=ms, wait_until="load")
            status = resp.status if resp is not None else 0
            if status >= 400:
                return Check(name=kind, passed=False, detail=f"HTTP {status}")
            return Check(name=kind, passed=True, detail=str(status) if status else "")
        if kind == "fill":
            await page.fill(arg, extras["value"], timeout=ms)
        elif kind == "click":
            await page.click(arg, timeout=ms)
        elif kind == "press":
            await page.press(arg, extras["key"], timeout=ms)
        elif kind == "wait_for":
            await page.locator(arg).first.wait_for(state="visible", timeout=ms)
        elif kind == "expect_text":
            try:
                await page.get_by_text(arg).first.wait_for(state="visible", timeout=ms)
            except error:
                return Check(
                    name=kind, passed=False, detail=f"text not visible within {ms / 1000:g} s"
                )
        return Check(name=kind, passed=True)
    except error as exc:
        return Check(name=kind, passed=False, detail=_short(exc))


def _short(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first[:300]


def _failed(spec: UiTestSpec, start: float, detail: str) -> UiTestResult:
    return UiTestResult(
        url=spec.url,
        passed=False,
        steps=[Check(name="browser", passed=False, detail=detail)],
        duration_s=round(time.perf_counter() - start, 3),
    )
