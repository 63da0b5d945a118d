"""The web console in a real browser (Debian's chromium, driven by Playwright) against a real master and
a real Docker agent: it loads, shows a job submitted through the CLI without a reload, follows its tasks
to Started, and shows why a task is pending. Each view's screenshot is kept in ``test-artifacts/console``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.cluster import MasterProcess
from tests.support.docker_node import node, unique_host

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = os.environ.get("CORRAL_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("CORRAL_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "console"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: run scripts/ensure-chromium.sh (make test does)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)  # actions only: assertions wait 5 s unless told otherwise, and
    expect.set_options(timeout=TIMEOUT_MS)  # containers starting on a loaded host can take most of that
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # A 401 before signing in is expected (the browser logs the failed fetch); nothing else is.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text else None)
    yield page
    context.close()
    assert errors == [], f"the console logged errors: {errors}"


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def cli_submit(master: MasterProcess, tmp_path: Path, spec: dict) -> str:
    path = tmp_path / f"{spec['application']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    done = subprocess.run(
        [sys.executable, "-m", "corral", "--master", master.url, "job", "submit", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"submitted job (\S+)", done.stdout)
    assert found, done.stdout
    return found.group(1)


def job(application: str, command: list[str], size: int, cpu: float) -> dict:
    return {
        "application": application,
        "owner": {"team_email": "console@example.com"},
        "container": {
            "image": {"name": "corral/busybox", "tag": "latest"},
            "command": command,
            "resources": {"cpu": cpu, "memory_mb": 64, "shm_mb": 8},
        },
        "batch": {"size": size},
    }


def viewer_token(master: MasterProcess) -> str:
    master.http.put("/api/v1/admin/teams/ops", json={})
    made = master.http.post(
        "/api/v1/admin/tokens", json={"name": "wallboard", "team": "ops", "role": "viewer"}
    )
    assert made.status_code == 201, made.text
    return str(made.json()["secret"])


def test_console_asks_for_a_token_and_signs_in(master: MasterProcess, page: Page) -> None:
    page.goto(master.url + "/?poll=0")
    form = page.locator("form.login")
    expect(form).to_contain_text("bearer token is required")
    shoot(page, "0-sign-in")
    page.locator("#token").fill(viewer_token(master))
    page.locator("form.login button").click()
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#card-hosts")).to_be_visible()
    page.locator("#signout").click()
    expect(page.locator("form.login")).to_be_visible()


def test_console_follows_a_cluster_live(master: MasterProcess, page: Page, tmp_path: Path) -> None:
    host = unique_host("console")
    with node(master.url, host):
        # the console loads (signed in with a read-only token): the fleet view shows the agent, healthy
        # the agent's host group, configured without a provider: shown, never scaled
        configured = master.http.put("/api/v1/hostgroups/default", json={"min_size": 0, "max_size": 4})
        assert configured.status_code == 200, configured.text
        page.context.add_cookies([{"name": "corral_token", "value": viewer_token(master), "url": master.url}])
        page.goto(master.url + "/?poll=0")  # no polling: only the event stream updates the page
        expect(page.locator("#live")).to_have_text("live")
        row = page.locator(f"#hosts-table tr[data-host='{host}']")
        expect(row).to_contain_text("healthy")
        expect(page.locator("#card-hosts")).to_contain_text("1 healthy")
        hostgroup = page.locator("#card-hostgroups [data-hostgroup='default']")
        expect(hostgroup).to_contain_text("none, not scaled")
        expect(hostgroup).to_contain_text("hosts 1 · idle 1")
        expect(hostgroup).to_contain_text("min 0 · max 4")
        shoot(page, "1-fleet")

        # a job submitted through the CLI appears in the jobs list without a reload
        page.locator("header nav a[data-view=jobs]").click()
        expect(page.locator("#jobs")).to_be_visible()
        page.evaluate("window.__corralNoReload = true")
        job_id = cli_submit(master, tmp_path, job("console_demo", ["sh", "-c", "sleep 60"], 2, 0.2))
        listed = page.locator(f"#jobs-table tr[data-job='{job_id}']")
        expect(listed).to_contain_text("console_demo")
        expect(listed).to_contain_text("Started 2")
        assert page.evaluate("window.__corralNoReload") is True  # the same page, updated in place
        shoot(page, "2-jobs")

        # its tasks reach Started, on the agent's host, each with its history
        listed.locator("a").click()
        started = page.locator("#tasks-table tr[data-task][data-state='Started']")
        expect(started).to_have_count(2)
        expect(started.first).to_contain_text(host)
        expect(started.first.locator("td").nth(4)).to_have_text("healthy")  # running, no probes
        started.first.click()
        history = page.locator("#tasks-table tr[data-history-of]")
        for state in ("Accepted", "Launched", "StartInitiated", "Started"):
            expect(history).to_contain_text(state)
        expect(page.locator("#job-history-table")).to_contain_text("accepted")
        shoot(page, "3-job")

        # a task that cannot fit shows the scheduler's reason
        pending_id = cli_submit(master, tmp_path, job("too_big", ["true"], 1, 64))
        page.goto(f"{master.url}/?poll=0#/jobs/{pending_id}")
        reason = page.locator("#tasks-table tr[data-state='Accepted'] .pending-reason")
        expect(reason).to_contain_text("no capacity")
        expect(reason).to_contain_text("cpu")
        shoot(page, "4-pending")

        # capacity groups: the default group holds the running tasks and has one pending
        page.locator("header nav a[data-view=groups]").click()
        group = page.locator("#groups-table tr[data-group='default']")
        expect(group).to_contain_text("0.4 used")
        expect(group.locator("td").nth(2)).to_have_text("1")
        shoot(page, "5-groups")

        # back on the fleet view, the queue card counts the pending task and the host its two
        page.locator("header nav a[data-view=fleet]").click()
        expect(page.locator("#card-queue")).to_contain_text("1 pending")
        expect(row.locator("td").nth(4)).to_have_text("2")
        shoot(page, "1-fleet")

        master.http.post(f"/api/v1/jobs/{job_id}/kill")
        master.http.post(f"/api/v1/jobs/{pending_id}/kill")
        master.wait_job_finished(job_id)
