"""The companion page end to end in headless Chromium: a real evaluation over HTTP, its link opened,
undocumented Wells items ticked, the score and the NG158 pathway switching live; an expired link."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import update

from cds_service.app import create_app
from cds_service.feedback_store.schema import evaluation_snapshots
from tests.companion.conftest import post_op_pe, wells_one
from tests.conftest import SERVICE_URL, LiveServer
from tests.support import fhir as F

APPS: dict[str, Any] = {}


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    app = create_app({"database_url": f"sqlite:///{tmp_path}/f.sqlite3", "TESTING": True})
    with LiveServer(app) as live:
        APPS[live.url] = app
        yield live.url, app
    app.extensions["cds"].store.close()


def _companion_url(base: str, resources: list[dict[str, Any]]) -> str:
    cards = requests.post(base + SERVICE_URL, json=F.hook_request(resources), timeout=30).json()["cards"]
    assert APPS[base].extensions["cds"].store.flush()  # written in the background, long before a click
    return next(link["url"] for card in cards for link in card.get("links", []) if "/companion/" in link["url"])


def test_ticking_an_undocumented_item_switches_the_pathway(page: Any, service: tuple[str, Any]) -> None:
    base, _ = service
    url = _companion_url(base, wells_one())
    assert url.startswith(base + "/companion/?ref=")
    page.goto(url + "&launch=abc&iss=" + base)  # a SMART launch without fhirclient installed still works
    page.wait_for_selector("#score-wells-dvt")
    assert page.inner_text("#score-wells-dvt") == "1"
    assert "unlikely" in page.inner_text("#result-wells-dvt")
    assert "D-dimer" in page.inner_text("#pathway-title-wells-dvt")
    assert page.is_checked("#wells-dvt-tenderness") and not page.is_checked("#wells-dvt-cancer")
    assert "documented as absent" in page.inner_text("#calc-wells-dvt tr.absent")
    page.check("#wells-dvt-cancer")
    assert page.inner_text("#score-wells-dvt") == "2"
    assert "likely (at or above 2)" in page.inner_text("#result-wells-dvt")
    assert "Wells 2" in page.inner_text("#pathway-title-wells-dvt")
    assert "proximal leg vein ultrasound" in page.inner_text("#pathway-wells-dvt")
    assert "1 item(s) changed" in page.inner_text("#changed-wells-dvt")
    page.check("#wells-dvt-alternative")  # -2: alternative diagnosis at least as likely
    assert page.inner_text("#score-wells-dvt") == "0"
    assert "unlikely" in page.inner_text("#result-wells-dvt")
    assert "Take a D-dimer" in page.inner_text("#pathway-wells-dvt")


def test_pe_wells_and_perc_are_calculators(page: Any, service: tuple[str, Any]) -> None:
    base, _ = service
    page.goto(_companion_url(base, post_op_pe()))
    page.wait_for_selector("#score-wells-pe")
    assert page.inner_text("#score-wells-pe") == "6"
    assert "likely" in page.inner_text("#result-wells-pe")
    page.uncheck("#wells-pe-heart_rate")
    page.uncheck("#wells-pe-immobilisation")
    assert page.inner_text("#score-wells-pe") == "3"
    assert "unlikely" in page.inner_text("#result-wells-pe")
    assert "D-dimer" in page.inner_text("#pathway-wells-pe")
    perc = page.inner_text("#perc")
    assert "only if your clinical pre-test estimate of PE is below 15 %" in perc
    assert "PERC positive" in page.inner_text("#perc-result")
    for key in ("age", "heart_rate", "leg_swelling", "surgery"):
        page.uncheck(f"#perc-{key}")
    result = page.inner_text("#perc-result")
    assert result.startswith("PERC negative if the 4 undocumented") and "ruled out without a D-dimer" in result
    evidence = page.inner_text("section[data-topic=dvt-likely]")
    assert "Total knee replacement" in evidence and "Procedure/" in evidence
    assert "knowledge version" in page.inner_text("#meta")


def test_an_expired_link_says_so(page: Any, service: tuple[str, Any]) -> None:
    base, app = service
    url = _companion_url(base, wells_one())
    with app.extensions["cds"].store.engine.begin() as connection:
        connection.execute(update(evaluation_snapshots).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    page.goto(url)
    page.wait_for_selector("#status")
    assert "expired" in page.inner_text("#status")
    assert page.query_selector("#calc-wells-dvt") is None


@pytest.mark.integration
def test_a_smart_launch_shows_the_patients_name(page: Any, service: tuple[str, Any], fhir: Any) -> None:
    """Launched as the sandbox launches a SMART link (a launch id from the FHIR server, then ?launch&iss), the
    page authorizes with fhirclient against the FHIR engine's stand-in EHR launch and reads the name."""
    from cds_service.companion.assets import install_fhirclient

    install_fhirclient()
    base, _ = service
    fhir.load([F.patient(age=60)])
    url = _companion_url(base, wells_one())
    launch = requests.post(fhir.base_url + "/_services/smart/Launch", timeout=10,
                           json={"launchUrl": url, "parameters": {"patient": "p1"}}).json()["launch_id"]
    page.goto(f"{url}&launch={launch}&iss={fhir.base_url}")
    page.wait_for_selector("#patient:not([hidden])", timeout=30_000)
    assert page.inner_text("#patient") == "Patient: Alex Testperson"
    assert "ref=" not in page.url  # back from the authorization (fhirclient then tidies the URL)
    page.wait_for_selector("#score-wells-dvt")  # the reference was kept in the tab's session storage
    assert page.inner_text("#score-wells-dvt") == "1"
