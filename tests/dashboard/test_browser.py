"""The dashboard in a real headless Chromium (Debian's package): it lists a sandbox hotfix and
follows it live through its phases (server-sent events, no reload), shows the charts, and
every XSS attempt through a user field renders as text; with JavaScript off it reads the same.
Screenshots are kept as artefacts in ``$HOTFIX_FSM_TEST_ARTEFACTS`` (``.ci/run`` sets it),
else under the test's tmp dir."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hotfix_fsm.dashboard.server import Dashboard
from hotfix_fsm.sandbox.serve import RunningSandbox
from hotfix_fsm.store import open_store
from tests.cli.conftest import cli_env, world  # noqa: F401 - fixtures
from tests.cli.conftest import served as sandbox  # noqa: F401 - a fixture
from tests.dashboard.browser import DevTools, chromium, run_once
from tests.dashboard.conftest import HOTFIX_ID, XSS, Served
from tests.dashboard.test_server import Page, assert_nothing_injected

PNG = b"\x89PNG\r\n\x1a\n"


def test_dumped_dom_lists_the_hotfix_charts_and_no_injected_element(
    served: Served, shot: Path
) -> None:
    dom = run_once(served.url + "/", "--dump-dom")
    page = Page(dom)
    assert_nothing_injected(page)
    sections = [a for t, a in page.tags if t == "section"]
    assert [a.get("data-hotfix") for a in sections] == [HOTFIX_ID]
    text = page.all_text()
    for field in ("description", "branch", "reason", "started_by"):
        assert XSS[field] in text, field
    assert [
        a.get("data-metric") for t, a in page.tags if t == "figure" and a.get("data-metric")
    ] == [XSS["metric"]]
    run_once(served.url + "/", f"--screenshot={shot}", "--window-size=1200,1800")
    assert shot.read_bytes().startswith(PNG)


def test_with_javascript_off_the_page_reads_the_same_and_reloads_itself(
    served: Served, tmp_path: Path, shot: Path
) -> None:
    browser = DevTools(tmp_path / "profile")
    try:
        browser.open_without_script(served.url + "/")
        page = Page(browser.wait_for_html("</main>"))
        # Our script element is there, never run: the no-script text is still shown.
        assert_nothing_injected(page)
        text = page.all_text()
        assert "live updates need JavaScript; this page reloads every 10s" in text
        # Without script the <noscript> refresh is live markup (with script it is only text):
        # the page reloads itself.
        assert browser.count('noscript > meta[http-equiv="refresh"][content="10"]') == 1
        assert [a.get("data-hotfix") for t, a in page.tags if t == "section"] == [HOTFIX_ID]
        assert XSS["description"] in text
        assert "Waiting for a human (gate monitor) since" in text
        charts = [
            a.get("data-metric") for t, a in page.tags if t == "figure" and a.get("data-metric")
        ]
        assert charts == [XSS["metric"]]
        # Server-drawn SVG images: no script needed for a chart.
        assert browser.wait_for(f"({DRAWN}) === 2")
        browser.screenshot(shot)
        assert shot.read_bytes().startswith(PNG)
    finally:
        browser.close()


def test_no_script_of_a_user_field_ever_runs(served: Served, tmp_path: Path, shot: Path) -> None:
    browser = DevTools(tmp_path / "profile")
    try:
        browser.open(served.url + "/")
        assert browser.wait_for("document.querySelectorAll('section.hotfix').length") == 1
        # The live script did run (CSP allows our own file), the injected ones did not.
        assert browser.wait_for("document.getElementById('live').textContent === 'live'")
        assert browser.evaluate("typeof window.__pwned") == "undefined"
        assert browser.evaluate("document.querySelectorAll('iframe, b, style').length") == 0
        # The only images are the charts the server drew, and they were drawn.
        assert browser.wait_for(f"({DRAWN}) === 2")
        assert browser.evaluate("document.querySelectorAll('img').length") == 2
        description = browser.evaluate("document.querySelector('.description').textContent")
        assert description == XSS["description"]
        browser.screenshot(shot)
        assert shot.read_bytes().startswith(PNG)
    finally:
        browser.close()


# How many chart images the browser loaded and drew (a broken image has no natural width).
DRAWN = """Array.from(document.querySelectorAll('figure.chart > img[src^="/charts/"]'))
  .filter(function (img) { return img.complete && img.naturalWidth > 0; }).length"""
PROBE = """JSON.stringify({
  marker: window.__marker || null,
  state: (document.querySelector('section.hotfix') || {dataset: {}}).dataset.state || null,
  charts: document.querySelectorAll('section.hotfix figure.metric > img').length,
  timeline: document.querySelectorAll('section.hotfix figure.timeline > img').length,
  phases: (document.querySelector('section.hotfix figure.timeline figcaption') || {})
    .textContent || "",
  recent: Array.from(document.querySelectorAll('tr[data-hotfix] td:nth-child(2)'))
    .map(function (td) { return td.textContent; }),
  description: (document.querySelector('section.hotfix .description') || {}).textContent || null
})"""


def test_the_page_follows_a_sandbox_hotfix_live_through_its_phases(
    sandbox: RunningSandbox,  # noqa: F811 - the fixture imported above
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
    shot: Path,
) -> None:
    chromium()  # skip early, before starting anything, when there is no browser
    store = open_store(cli_env["HOTFIX_FSM_DB"])
    dashboard = Dashboard(store, port=0, interval=0.2)
    url = dashboard.start()
    browser = DevTools(tmp_path / "profile")
    description = "Fix <img src=x onerror=window.__pwned=1> expiry"
    proc = None
    try:
        browser.open(url + "/")
        assert browser.wait_for("document.getElementById('live').textContent === 'live'")
        browser.evaluate("window.__marker = 42")  # survives only if the page never reloads
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hotfix_fsm.cli",
                "start",
                "INC-5",
                description,
                "--cherry-pick",
                sandbox.info.fix_sha,
                "--yes",
            ],
            cwd=sandbox.info.work,
            env=cli_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 600  # generous: a busy machine is slow, not wrong
        while time.monotonic() < deadline:
            look = json.loads(browser.evaluate(PROBE))
            if not seen or look != seen[-1]:
                seen.append(look)
            if "done" in look["recent"]:
                break
            code = proc.poll()
            assert code in (None, 0), (code, proc.stderr.read() if proc.stderr else "")
            time.sleep(0.05)  # the poll interval of this observer, not a synchronisation
        states = [s["state"] for s in seen if s["state"]]
        distinct = list(dict.fromkeys(states))
        assert len(distinct) >= 3, seen  # followed through phases, not just start and end
        assert max(s["charts"] for s in seen) >= 1, seen  # the monitor's metrics were drawn
        assert max(s["timeline"] for s in seen) == 1, seen
        assert max(len(s["phases"].split(";")) for s in seen) >= 3, seen
        assert all(s["marker"] == 42 for s in seen), seen  # live by events, not by reloads
        assert description in [s["description"] for s in seen], seen
        assert browser.evaluate("typeof window.__pwned") == "undefined"
        browser.screenshot(shot)
        assert shot.read_bytes().startswith(PNG)
        assert proc.wait(timeout=120) == 0
        # The finished hotfix's own page: its timeline and every metric chart drawn.
        hotfix_id = store.list_hotfixes(include_finished=True, limit=1)[0].id
        browser.open(f"{url}/hotfix/{hotfix_id}")
        figures = browser.wait_for("document.querySelectorAll('figure.chart > img').length")
        assert figures >= 2, figures  # the timeline and at least one metric
        assert browser.wait_for(f"({DRAWN}) === {figures}")
    finally:
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            if proc.stderr is not None:
                proc.stderr.close()
        browser.close()
        dashboard.stop()
        store.engine.dispose()
