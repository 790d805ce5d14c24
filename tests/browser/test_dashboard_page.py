"""The dashboard in headless Chromium (Debian's chromium, Playwright): the fixture feedback's known answers
(tests/analytics/fixture.py) on the page, its charts drawn, its own stylesheet the only thing loaded, the
form switching to weeks, the exports; 401 JSON without the token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cds_service.app import create_app
from tests.analytics import fixture as F
from tests.analytics.conftest import AUTH, TOKEN
from tests.conftest import LiveServer

QUERY = f"since={F.SINCE}&until={F.UNTIL}"


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[str]:
    app = create_app({"database_url": f"sqlite:///{tmp_path}/f.sqlite3", "TESTING": True, "dashboard": True,
                      "dashboard_token": TOKEN})
    F.load(app.extensions["cds"].store)
    with LiveServer(app) as live:
        yield live.url
    app.extensions["cds"].store.close()


@pytest.fixture()
def dashboard(browser: Any, service: str) -> Iterator[tuple[Any, list[str]]]:
    """A page whose every request carries the dashboard token; the URLs it requested."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, extra_http_headers=AUTH)
    opened = context.new_page()
    errors: list[str] = []
    requested: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    opened.on("request", lambda request: requested.append(request.url))
    yield opened, requested
    context.close()
    assert not errors, f"errors on the page: {errors}"


def cells(page: Any, row: str) -> dict[str, str]:
    return {cell.get_attribute("data-measure"): cell.inner_text().strip()
            for cell in page.query_selector_all(f"{row} td[data-measure]")}


def test_the_page_shows_the_known_answers(dashboard: tuple[Any, list[str]], service: str, tmp_path: Path) -> None:
    page, requested = dashboard
    response = page.goto(f"{service}/dashboard?{QUERY}")
    assert response is not None and response.status == 200
    assert page.title() == "Feedback analytics · posterior-knee-pain"
    assert page.inner_text("#total-shown") == "11"
    assert page.inner_text("#total-acceptance") == "27.3 %"
    assert page.inner_text("#total-override") == "54.5 %"
    assert page.inner_text("#total-no-outcome") == "2"
    assert page.inner_text("#total-tta") == "30.0 s"
    assert page.inner_text("#total-repeat") == "30.0 %"
    assert page.inner_text("#total-comments") == "2"
    assert page.inner_text("#total-unmatched") == "1"
    dvt = cells(page, "#topic-table tr[data-topic=dvt-likely]")
    assert dvt == {"shown": "6", "accepted": "2", "overridden": "4", "no_outcome": "0", "acceptance_rate": "33.3 %",
                   "override_rate": "66.7 %", "answered_override_rate": "66.7 %", "time_to_action_p50_s": "35.0 s",
                   "time_to_action_p90_s": "90.0 s", "repeat_rate": "33.3 % (2/6)", "comments": "1"}
    septic = cells(page, "#topic-table tr[data-topic=septic-arthritis]")
    assert (septic["shown"], septic["time_to_action_p50_s"], septic["repeat_rate"]) == ("2", "—", "0.0 % (0/1)")
    versions = {row.get_attribute("data-version"): row.query_selector("td[data-measure=shown]").inner_text()
                for row in page.query_selector_all("#version-table tbody tr")}
    assert versions == {F.V1: "7", F.V2: "4"}
    section = "#topic-dvt-likely"
    assert page.inner_text(f"{section} table.orders tr[data-order=venous-duplex] td") == "1"
    assert "Patient declined investigation" in page.inner_text(f"{section} tr[data-reason=patient-declined]")
    assert "patient-refuses" in page.inner_text(f"{section} tr[data-reason=patient-declined]")
    assert page.inner_text("#hl7-table tr[data-hl7=limited-time] td.num") == "1"
    assert page.inner_text("#hl7-categories tr[data-category=cds-not-applicable] td") == "2"

    # the charts: one bar per card here (each day's outcomes differ), each with its value; drawn at full width
    bars = page.query_selector_all("#chart-outcomes rect.bar")
    assert sum(float(bar.get_attribute("data-value")) for bar in bars) == 11
    per_day = {}
    for bar in bars:
        per_day[bar.get_attribute("data-label")] = per_day.get(bar.get_attribute("data-label"), 0) + float(
            bar.get_attribute("data-value"))
    assert per_day == {day: float(n) for day, n in F.SHOWN_PER_DAY.items()}
    assert page.locator("#chart-outcomes").bounding_box()["width"] > 900
    assert len(page.query_selector_all("#chart-rates circle.point")) == 2 * len(F.SHOWN_PER_DAY)
    topic_bars = {(b.get_attribute("data-label"), b.get_attribute("data-series")): b.get_attribute("data-value")
                  for b in page.query_selector_all("#chart-topic-rates rect.bar")}
    assert topic_bars[("DVT likely (Wells ≥ 2)", "override_rate")] == "0.6667"
    assert len(page.query_selector_all("#chart-topic-times rect.bar")) == 4  # no times for septic arthritis
    assert page.eval_on_selector("table", "t => getComputedStyle(t).borderCollapse") == "collapse"  # its CSS loaded

    assert requested and all(url.startswith(service + "/dashboard") for url in requested), requested
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)


def test_the_form_switches_to_weeks_and_the_exports_answer(dashboard: tuple[Any, list[str]], service: str) -> None:
    page, _ = dashboard
    page.goto(f"{service}/dashboard?{QUERY}")
    page.select_option("select[name=period]", "week")
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "period=week" in page.url
    labels = {bar.get_attribute("data-label") for bar in page.query_selector_all("#chart-outcomes rect.bar")}
    assert labels == {"2026-11-02", "2026-11-09"}
    exported = page.context.request.get(service + page.get_attribute("#export-json", "href"))
    assert exported.status == 200
    body = json.loads(exported.text())
    assert body["period"] == "week" and body["totals"]["shown"] == 11
    csv = page.context.request.get(service + page.get_attribute("#export-csv", "href"))
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text().splitlines()[0].startswith("grouping,topic,indicator,knowledge_version,period_start,shown")


def test_without_the_token_the_browser_gets_401_json(browser: Any, service: str) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(f"{service}/dashboard")
        assert response is not None and response.status == 401
        assert json.loads(page.inner_text("body"))["error"] == "unauthorized"
    finally:
        context.close()
