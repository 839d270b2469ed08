"""The operator's console in a real headless Chromium against a real twistd stowpair
(and a twistd stowrsd with --fail-rate): what an operator sees and does, one behaviour
per test, located by role and text. Screenshots go to docs/console-*.png."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.ui.conftest import Stowpair, screenshot

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def tomorrow() -> str:
    return (datetime.now() + timedelta(days=1)).strftime("%Y%m%d180000")


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def row(page: Any, task_id: int) -> Any:
    return page.locator(f'tr[data-task="{task_id}"]')


def test_demo_export_appears_completed(page: Any, stowpair: Stowpair) -> None:
    """When the console opens, the demo study's export is listed COMPLETED, with its
    20 instances, under the Completed count."""
    [demo] = stowpair.rest("GET", "/monitor/export", ExporterID="StowExporter", limit="1",
                           orderby="createdTime")[1]  # fmt: skip
    page.goto("/")
    expect(page.get_by_role("heading", name="Export tasks")).to_be_visible()
    demo_row = row(page, demo["taskID"])
    expect(demo_row.get_by_text("COMPLETED", exact=True)).to_be_visible()
    expect(demo_row.get_by_role("cell", name="20", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^\d+ Completed$"))).to_be_visible()


def test_scheduled_task_is_cancelled_from_the_page(page: Any, stowpair: Stowpair) -> None:
    """When a task scheduled for tomorrow is cancelled from its row and the dialog
    confirmed, the REST API shows it CANCELED."""
    task_id = stowpair.export("StowExporter", scheduledTime=tomorrow(), batchID="cancel-me")
    page.goto("/ui/#/tasks?batchID=cancel-me")
    expect(row(page, task_id).get_by_text("SCHEDULED", exact=True)).to_be_visible()
    page.get_by_role("button", name=f"Cancel task {task_id}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Cancel task {task_id}?")
    dialog.get_by_role("button", name="Cancel task").click()
    expect(page.get_by_text(f"Task {task_id} cancelled.")).to_be_visible()
    assert stowpair.task(task_id)["status"] == "CANCELED"
    expect(row(page, task_id).get_by_text("CANCELED", exact=True)).to_be_visible()


def test_bulk_reschedule_by_filter(page: Any, stowpair: Stowpair) -> None:
    """When the tasks of one batch are rescheduled to another exporter by filter, the
    console shows dcm4chee's 200 {"count": 3} and every one runs with that exporter."""
    ids = [stowpair.export("StowExporter", scheduledTime=tomorrow(), batchID="bulk") for _ in "abc"]
    page.goto("/ui/#/tasks")
    page.get_by_label("Batch ID").fill("bulk")
    page.get_by_role("button", name="Apply filter").click()
    expect(page.get_by_text("3 tasks match the filter")).to_be_visible()
    page.get_by_role("button", name="Reschedule matching…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Exporter").select_option("Archive2")
    screenshot(page, "bulk-reschedule")
    dialog.get_by_role("button", name="Reschedule").click()
    expect(page.get_by_text('3 tasks rescheduled. (HTTP 200 {"count":3})')).to_be_visible()
    for task_id in ids:
        task = stowpair.finished(task_id)
        assert (task["ExporterID"], task["status"]) == ("Archive2", "COMPLETED")


def test_task_detail_shows_failure_reasons(page: Any, stowpair: Stowpair) -> None:
    """When an export into stowrsd --fail-rate ends, the task's page lists the refused
    instances with 0xA700 and what it means, and the attempt's outcome message."""
    task = stowpair.finished(stowpair.export("Flaky", batchID="flaky"))
    refused = [i for i in task["instances"] if i["status"] == "FAILED"]
    assert refused and {i["FailureReason"] for i in refused} == {0xA700}
    page.goto(f"/ui/#/tasks/{task['taskID']}")
    expect(page.get_by_role("heading", name=f"Task {task['taskID']}")).to_be_visible()
    instances = page.locator("table.instances tbody tr")
    expect(instances).to_have_count(20)
    expect(page.locator("table.instances td.code", has_text="0xA700")).to_have_count(len(refused))
    expect(page.get_by_text("Refused: out of resources").first).to_be_visible()
    expect(page.get_by_text(task["outcomeMessage"]).first).to_be_visible()
    page.get_by_label("Show").select_option("FAILED")
    expect(instances).to_have_count(len(refused))
    screenshot(page, "task-detail", full_page=True)


def test_live_update_without_reload(page: Any, stowpair: Stowpair) -> None:
    """When an export is requested by REST while the console is open, its task appears
    and completes on the page without the page being reloaded."""
    page.goto("/ui/#/tasks")
    expect(page.get_by_role("heading", name="Export tasks")).to_be_visible()
    page.evaluate("window.sameDocument = true")
    task_id = stowpair.export("StowExporter", batchID="live")
    expect(row(page, task_id).get_by_text("COMPLETED", exact=True)).to_be_visible()
    assert page.evaluate("window.sameDocument") is True
    screenshot(page, "tasks")


def test_study_is_exported_from_the_studies_page(page: Any, stowpair: Stowpair) -> None:
    """When "Export to…" is chosen for the demo study and an exporter picked, the task
    is created and the REST API lists it."""
    study = stowpair.demo_study()
    page.goto("/ui/#/studies")
    expect(
        page.get_by_text("The archive holds 1 study, 1 series and 20 instances.")
    ).to_be_visible()
    page.get_by_role("button", name=f"Export study {study} to…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Archive2").check()
    dialog.get_by_label("Batch ID").fill("from-studies")
    dialog.get_by_role("button", name="Export").click()
    expect(page.get_by_text(re.compile(r"queued: task \d+"))).to_be_visible()
    code, tasks = stowpair.rest("GET", "/monitor/export", batchID="from-studies")
    assert code == 200 and [t["ExporterID"] for t in tasks] == ["Archive2"]
    screenshot(page, "studies")


def test_configuration_reload_shows_its_result(page: Any, stowpair: Stowpair) -> None:
    """When the configuration is reloaded from its page, 204 is reported, the last
    reload shows APPLIED, and secrets stay masked."""
    page.goto("/ui/#/config")
    expect(page.get_by_role("heading", name="Web applications (2)")).to_be_visible()
    page.get_by_role("button", name="Reload configuration").click()
    expect(page.get_by_text("Configuration reloaded (HTTP 204).")).to_be_visible()
    expect(page.get_by_text("APPLIED")).to_be_visible()
    expect(page.get_by_role("cell", name="********")).to_be_visible()
    assert "never-shown-token" not in page.content()
    screenshot(page, "config")


def test_emulator_page_lists_received_requests(page: Any, stowpair: Stowpair) -> None:
    """When the emulator page opens, the requests the emulator answered are listed with
    their status, instances and bytes."""
    page.goto("/ui/#/emulator")
    expect(page.get_by_role("heading", name="Built-in emulator")).to_be_visible()
    expect(page.locator("table.requests tbody tr").first).to_contain_text("/stowrs/studies")
    expect(page.locator("table.requests tbody tr").first).to_contain_text("200")
    screenshot(page, "emulator")


def test_keyboard_focus_survives_live_updates(page: Any, stowpair: Stowpair) -> None:
    """When a row's button has the keyboard focus, live refreshes keep it there, and
    Enter then Escape opens and closes its dialog."""
    page.goto("/ui/#/tasks")
    button = page.get_by_role("button", name=re.compile(r"^Reschedule task \d+$")).first
    button.focus()
    label = button.get_attribute("aria-label")
    page.wait_for_timeout(4500)  # two refreshes of the page (every 2 s)
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == label
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_unreachable_api_shows_the_error_state(page: Any, stowpair: Stowpair) -> None:
    """When the REST API stops answering, a banner says so and that it keeps trying;
    when it answers again, the banner goes."""
    page.goto("/ui/#/tasks")
    expect(page.get_by_role("heading", name="Export tasks")).to_be_visible()
    page.route("**/dcm4chee-arc/**", lambda route: route.abort())
    expect(page.get_by_role("alert")).to_contain_text("The REST API does not answer.")
    screenshot(page, "error")
    page.unroute("**/dcm4chee-arc/**")
    expect(page.get_by_role("alert")).to_be_hidden()


def test_sign_in_sends_the_credentials_on_every_call(page: Any, stowpair: Stowpair) -> None:
    """When the API answers 401 with a Basic challenge, the console asks for a user and
    password and then sends them as an Authorization header on every call (no cookie)."""
    expected = "Basic " + base64.b64encode(b"operator:pa ss").decode()
    seen: list[str | None] = []

    def guard(route: Any) -> None:
        headers = route.request.headers
        seen.append(headers.get("authorization"))
        assert "cookie" not in headers
        if headers.get("authorization") != expected:
            route.fulfill(
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="stowpair"'},
                content_type="application/json",
                body='{"errorMessage": "Credentials needed"}',
            )
        else:
            route.continue_()

    page.route("**/dcm4chee-arc/**", guard)
    page.goto("/ui/#/tasks")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text('realm "stowpair"')
    dialog.get_by_label("User").fill("operator")
    dialog.get_by_label("Password").fill("pa ss")
    dialog.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name=re.compile(r"^\d+ Completed$"))).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert seen[-1] == expected


def test_declined_sign_in_is_not_asked_again_by_itself(page: Any, stowpair: Stowpair) -> None:
    """When the API asks for a Bearer token and the sign-in is declined, the console says
    it needs credentials and does not ask again on its own; "Sign in" asks again."""
    page.route(
        "**/dcm4chee-arc/**",
        lambda route: route.fulfill(
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="stowpair"'},
            content_type="application/json",
            body='{"errorMessage": "An access token is needed"}',
        ),
    )
    page.goto("/ui/#/tasks")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Access token")).to_be_visible()
    dialog.get_by_role("button", name="Not now").click()
    expect(page.get_by_role("alert")).to_contain_text("Sign-in needed")
    page.wait_for_timeout(4500)  # two refreshes (every 2 s)
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("dialog").get_by_label("Access token")).to_be_visible()


def test_tasks_of_several_nodes_show_their_node(page: Any, stowpair: Stowpair) -> None:
    """When the tasks listed are held by more than one node (a cluster), a Node column
    shows each task's dicomDeviceName."""
    first = stowpair.export("StowExporter", scheduledTime=tomorrow(), batchID="nodes")
    second = stowpair.export("StowExporter", scheduledTime=tomorrow(), batchID="nodes")
    code, _ = stowpair.rest("POST", f"/monitor/export/{second}/reschedule",
                            newDeviceName="node-2", scheduledTime=tomorrow())  # fmt: skip
    assert code == 204
    page.goto("/ui/#/tasks?batchID=nodes")
    expect(page.get_by_role("columnheader", name="Node")).to_be_visible()
    expect(row(page, second).get_by_role("cell", name="node-2", exact=True)).to_be_visible()
    expect(row(page, first).get_by_role("cell", name="stowpair", exact=True)).to_be_visible()
