"""The web app end to end: `python app.py` on 127.0.0.1, driven by gradio_client and by a real
headless Chromium (Debian's package, through Playwright), with the real perception backend.

Screenshots go to `artifacts/webapp/` (git-ignored). Browser tests skip, loudly, only where
chromium is missing outside CI; under CI=true a missing chromium fails them.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file

from tests.browser import CHROMIUM_FLAGS, chromium_path
from tests.readiness import wait_until_serving

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "artifacts" / "webapp"
THUMB_UP = "gesture_thumb_up_mediapipe_samples_test_video.mp4"
QUESTION = "When does she give a thumbs up?"
# The labelled thumbs-up span of that video (manifest.csv).
THUMB_UP_S = (2.2, 7.8)
UPLOAD_LIMIT_MB = 4
STARTUP_TIMEOUT_S = 180


# Pauses the player at 0 and records `currentTime` at every `seeked` event in window.baSeeks.
SEEK_RECORDER = """() => {
  const video = document.querySelector('#ba-player video');
  video.pause();
  window.baSeeks = [];
  video.addEventListener('seeked', () => window.baSeeks.push(video.currentTime));
}"""


@dataclass
class Server:
    url: str
    home: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    problem = wait_until_serving(url, process, STARTUP_TIMEOUT_S, poll_s=1.0)
    if problem:
        pytest.fail(f"{problem}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(shared_media: Path, tmp_path_factory: pytest.TempPathFactory):
    """`python app.py --port N` with a private data directory and a small upload limit."""
    home = tmp_path_factory.mktemp("webapp") / "home"
    log = home.parent / "server.log"
    port = _free_port()
    env = {
        **os.environ,
        "BEHAVIOR_AGENT_HOME": str(home),
        "BEHAVIOR_AGENT_MAX_UPLOAD_MB": str(UPLOAD_LIMIT_MB),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, process, log)
        yield Server(url=url, home=home, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def client(server: Server) -> Client:
    return Client(server.url, verbose=False)


@pytest.fixture(scope="module")
def indexed(client: Client, shared_media: Path) -> dict:
    """The thumbs-up video uploaded and indexed through the `/index` API."""
    *_, summary = client.predict(handle_file(str(shared_media / THUMB_UP)), api_name="/index")
    return summary


def _thumbs_up(evidence: list[dict]) -> list[dict]:
    return [e for e in evidence if "thumb" in e["label"].lower()]


# --- gradio_client ---------------------------------------------------------------------------


def test_index_api_stores_and_indexes_the_upload(indexed: dict, server: Server) -> None:
    assert indexed["name"] == THUMB_UP
    assert indexed["clips"] >= 1 and indexed["detections"] >= 1
    assert abs(indexed["duration_s"] - 7.8) < 0.2
    assert Path(indexed["file"]).is_relative_to(server.home / "uploads")


def test_ask_api_answers_with_evidence_in_the_thumbs_up_span(
    client: Client, indexed: dict, server: Server
) -> None:
    chat, cleared, answer = client.predict(QUESTION, indexed["video"], api_name="/ask")
    assert cleared == ""
    moments = _thumbs_up(answer["evidence"])
    assert moments, answer
    low, high = THUMB_UP_S
    assert all(low <= m["start_s"] <= high and m["end_s"] <= high + 0.1 for m in moments)
    # The chat shows the question, the agent's steps as panels, and the evidence card.
    titles = [m["metadata"]["title"] for m in chat if m.get("metadata")]
    assert {"Plan", "Retrieved clips", "Inspected clips"} <= set(titles)
    reply = chat[-1]["content"][0]["text"]
    assert f'href="#t={moments[0]["start_s"]:.3f}"' in reply
    thumbnail = reply.split('src="', 1)[1].split('"', 1)[0]
    with urllib.request.urlopen(server.url + thumbnail) as response:
        assert response.headers["content-type"] == "image/jpeg"


def test_follow_up_continues_the_conversation(client: Client, indexed: dict) -> None:
    chat, _, answer = client.predict("How long did it last?", indexed["video"], api_name="/ask")
    questions = [m["content"][0]["text"] for m in chat if m["role"] == "user"]
    assert questions[-2:] == [QUESTION, "How long did it last?"]
    assert answer["answer"]


@pytest.mark.parametrize("fmt", ["html", "json"])
def test_report_api_downloads_the_report(client: Client, indexed: dict, fmt: str) -> None:
    path, status = client.predict(indexed["video"], fmt, api_name="/report")
    text = Path(path).read_text(encoding="utf-8")
    assert Path(path).suffix == f".{fmt}" and "ready" in status
    if fmt == "json":
        events = _thumbs_up(json.loads(text)["events"])
        assert events and all(THUMB_UP_S[0] - 0.5 <= e["start_s"] <= THUMB_UP_S[1] for e in events)
    else:
        assert text.lstrip().lower().startswith("<!doctype html") and "thumb" in text.lower()


def test_indexing_reports_progress_by_stage(client: Client, shared_media: Path) -> None:
    job = client.submit(
        handle_file(str(shared_media / "action_yoga_askanything.mp4")), api_name="/index"
    )
    seen: set[str] = set()
    while not job.done():
        for unit in job.status().progress_data or []:
            seen.add((unit.desc or "").split(" — ")[0])
        time.sleep(0.02)
    assert job.result()[3]["clips"] >= 1
    assert seen & {"Reading the video", "Perceiving", "Embedding", "Saving to the library"}, seen


def test_bad_upload_gives_a_readable_error(client: Client, tmp_path: Path) -> None:
    fake = tmp_path / "holiday.mp4"
    fake.write_text("definitely not a video\n" * 100)
    with pytest.raises(Exception) as caught:
        client.predict(handle_file(str(fake)), api_name="/index")
    message = str(caught.value)
    assert "holiday.mp4" in message and "Traceback" not in message


def test_upload_above_the_limit_is_refused(client: Client, server: Server, tmp_path: Path) -> None:
    big = tmp_path / "long_session.mp4"
    big.write_bytes(os.urandom((UPLOAD_LIMIT_MB + 1) * 2**20))
    # gradio_client reads the limit from the app and refuses before sending ...
    with pytest.raises(Exception, match="exceeds the maximum file size"):
        client.predict(handle_file(str(big)), api_name="/index")
    # ... and the server refuses it too, whoever sends it.
    with open(big, "rb") as handle:
        response = httpx.post(
            f"{server.url}gradio_api/upload", files={"files": ("long_session.mp4", handle)}
        )
    assert response.status_code == 413 and "maximum allowed size" in response.text
    assert not list((server.home / "uploads").rglob("long_session.mp4"))


def test_only_the_data_folders_are_served(server: Server, indexed: dict) -> None:
    def status(path: Path) -> int:
        try:
            with urllib.request.urlopen(f"{server.url}gradio_api/file={path}") as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert status(Path(indexed["file"])) == 200
    assert status(server.home / "library.sqlite") >= 400
    assert status(REPO_ROOT / "pyproject.toml") >= 400
    assert status(Path("/etc/passwd")) >= 400


# --- real browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_path()


@pytest.mark.browser
def test_browser_upload_ask_and_click_through_to_the_moment(
    server: Server, shared_media: Path, chromium: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 960})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url)
        # A broken file first: the page says what is wrong, in words.
        broken = ARTIFACTS / "broken.mp4"
        broken.write_text("not a video\n" * 100)
        page.set_input_files("#ba-upload input[type=file]", str(broken))
        toast = page.locator(".toast-body").filter(has_text="broken.mp4")
        expect(toast).to_contain_text("as a video", timeout=60_000)
        assert "Traceback" not in toast.inner_text() and "/tmp/gradio" not in toast.inner_text()
        page.screenshot(path=ARTIFACTS / "0-bad-upload.png", full_page=True)
        page.locator(".toast-close").first.click()
        page.set_input_files("#ba-upload input[type=file]", str(shared_media / THUMB_UP))
        expect(page.locator("#ba-index-status")).to_contain_text("Indexed", timeout=240_000)
        page.screenshot(path=ARTIFACTS / "1-indexed.png", full_page=True)

        # Indexing switches to the Ask tab; ask and wait for the evidence card.
        page.locator("#ba-question textarea").fill(QUESTION)
        page.locator("#ba-question textarea").press("Enter")
        link = page.locator("#ba-chat a.ba-seek").first
        expect(link).to_be_visible(timeout=240_000)
        expect(page.locator("#ba-chat .ba-card img").first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "2-answer.png", full_page=True)

        start_s = float(link.get_attribute("href").removeprefix("#t="))
        assert THUMB_UP_S[0] <= start_s <= THUMB_UP_S[1]
        page.wait_for_function(
            "document.querySelector('#ba-player video')?.readyState >= 1", timeout=60_000
        )
        # Record where the player lands after each seek: only a real seek fires `seeked`.
        page.evaluate(SEEK_RECORDER)
        link.click()
        page.wait_for_function("window.baSeeks.length > 0", timeout=20_000)
        landed_s = page.evaluate("window.baSeeks[0]")
        assert abs(landed_s - start_s) < 0.1, (landed_s, start_s)
        current_s = page.evaluate("document.querySelector('#ba-player video').currentTime")
        assert start_s - 0.05 <= current_s <= THUMB_UP_S[1] + 0.1
        page.evaluate("document.querySelector('#ba-player video').pause()")
        # The agent's steps are collapsible panels; open the plan to show what it understood.
        page.locator("#ba-chat").get_by_text("Plan", exact=True).first.click()
        expect(page.locator("#ba-chat li", has_text="targets").first).to_be_visible()
        page.wait_for_timeout(500)  # let the panel finish opening before the screenshot
        page.screenshot(path=ARTIFACTS / "3-seeked.png", full_page=True)

        page.get_by_role("tab", name="Timeline").click()
        expect(page.locator("#ba-chart img")).to_be_visible(timeout=60_000)
        page.screenshot(path=ARTIFACTS / "4-timeline.png", full_page=True)
        # The timeline's event times seek the same player.
        last = page.locator("#ba-events a.ba-seek").last
        event_s = float(last.get_attribute("href").removeprefix("#t="))
        page.evaluate(SEEK_RECORDER)
        last.click()
        page.wait_for_function("window.baSeeks.length > 0", timeout=20_000)
        assert abs(page.evaluate("window.baSeeks[0]") - event_s) < 0.1
        browser.close()
    assert not errors, errors
