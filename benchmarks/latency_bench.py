"""Command latency benchmark: wall time and peak RSS of each `behavior-agent` call a user repeats.

Every command runs in a fresh child process, as a user at a shell would run it, against a private
temporary BEHAVIOR_AGENT_HOME in which the shared thumbs-up video was indexed once beforehand
(that set-up run is timed too, but it is not a target). Measured: `--version`, `library`,
`index` on the indexed video (a no-op), `search`, `ask` (a first question on a new thread, then
a follow-up on the same thread), `report`, and the web app's first answer after start (`python
app.py` on a free loopback port, asked through gradio_client against 127.0.0.1 only, then
stopped). Peak RSS of a CLI call is the child's own `ru_maxrss` (from `os.wait4`); for the web
app, psutil polls the server process tree.

Run from the repository root, as a module (it shares the web-app readiness wait with the
tests, `tests/readiness.py`): `.venv/bin/python -m benchmarks.latency_bench [--media
../shared/media] [--repeat 3]`. Each figure is the median over `--repeat` runs.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.readiness import wait_until_serving

REPO_ROOT = Path(__file__).resolve().parents[1]
VIDEO = "gesture_thumb_up_mediapipe_samples_test_video.mp4"
QUESTION = "When does she give a thumbs up?"
FOLLOW_UP = "How long did it last?"
# Targets from issue 15 (seconds, on the 2-core development machine).
TARGETS_S = {"library": 1.5, "index (indexed)": 1.5, "search": 4.0, "ask (first question)": 6.0}
APP_STARTUP_TIMEOUT_S = 300


@dataclass
class Run:
    """One measured call."""

    wall_s: float
    peak_rss_mib: float


def run_cli(args: list[str], env: dict[str, str], log: Path) -> Run:
    """`python -m agent.cli ARGS` in a child process; its wall time and its own peak RSS."""
    started = time.perf_counter()
    with open(log, "ab") as out:
        out.write(f"\n$ behavior-agent {' '.join(args)}\n".encode())
        out.flush()
        child = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        # wait4 gives this child's rusage alone (RUSAGE_CHILDREN would be the max of all).
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall_s = time.perf_counter() - started
    if child.returncode != 0:
        sys.exit(f"`behavior-agent {' '.join(args)}` failed ({child.returncode}); see {log}")
    return Run(wall_s, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RssPoller:
    """Peak resident memory of a process and its children, polled every 50 ms."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self._psutil = psutil
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self._process, *self._process.children(recursive=True)]
                self.peak_bytes = max(self.peak_bytes, sum(p.memory_info().rss for p in tree))
            except self._psutil.Error:
                pass
            self._stop.wait(0.05)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_bytes / 2**20


def web_first_answer(env: dict[str, str], sha256: str, log: Path) -> tuple[Run, float]:
    """(start-to-first-answer run, seconds of the answer call alone) for `python app.py`."""
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    with open(log, "ab") as out:
        out.write(f"\n$ python app.py --port {port}\n".encode())
        out.flush()
        server = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env={**env, "GRADIO_ANALYTICS_ENABLED": "False"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    poller = RssPoller(server.pid)
    try:
        _wait_until_up(url, server, log)
        client = Client(url, verbose=False)
        asked = time.perf_counter()
        _, _, answer = client.predict(QUESTION, sha256, api_name="/ask")
        answered = time.perf_counter()
        if not answer or not answer.get("answer"):
            sys.exit(f"the web app gave no answer: {answer!r}; see {log}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        peak_mib = poller.stop()
    return Run(answered - started, peak_mib), answered - asked


def _wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    problem = wait_until_serving(url, server, APP_STARTUP_TIMEOUT_S, poll_s=0.1)
    if problem:
        sys.exit(f"{problem}; see {log}")


def library_sha256(env: dict[str, str]) -> str:
    import json

    listing = subprocess.run(
        [sys.executable, "-m", "agent.cli", "library", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(listing.stdout)["videos"][0]["sha256"]


def median_run(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.wall_s for r in runs), statistics.median(r.peak_rss_mib for r in runs)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--media", type=Path, default=REPO_ROOT.parent / "shared" / "media")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per command (median).")
    parser.add_argument("--no-web", action="store_true", help="Skip the web app measurement.")
    options = parser.parse_args()
    video = options.media / VIDEO
    if not video.is_file():
        sys.exit(f"{video} is missing; pass --media with the folder of the shared media.")

    with tempfile.TemporaryDirectory(prefix="latency-bench-") as scratch:
        home = Path(scratch) / "home"
        log = Path(scratch) / "commands.log"
        env = {**os.environ, "BEHAVIOR_AGENT_HOME": str(home)}
        env.pop("BEHAVIOR_AGENT_BACKEND", None)  # the perception backend is what is measured
        setup = run_cli(["index", str(video)], env, log)
        print(f"set-up: first `index` of {VIDEO}: {setup.wall_s:.1f} s", file=sys.stderr)
        report_out = Path(scratch) / "report.json"
        commands = {
            "--version": ["--version"],
            "library": ["library"],
            "index (indexed)": ["index", str(video)],
            "search": ["search", "thumbs up"],
            "report": ["report", str(video), "--format", "json", "--out", str(report_out)],
        }
        results: dict[str, Run] = {}
        for name, args in commands.items():
            results[name] = median_run([run_cli(args, env, log) for _ in range(options.repeat)])
            print(f"{name}: {results[name].wall_s:.2f} s", file=sys.stderr)
        firsts, follow_ups = [], []
        for number in range(options.repeat):
            thread = ["--thread", f"bench-{number}", "--quiet"]
            firsts.append(run_cli(["ask", str(video), QUESTION, *thread], env, log))
            follow_ups.append(run_cli(["ask", str(video), FOLLOW_UP, *thread], env, log))
        results["ask (first question)"] = median_run(firsts)
        results["ask (follow-up)"] = median_run(follow_ups)
        answer_only = None
        if not options.no_web:
            web = [web_first_answer(env, library_sha256(env), log) for _ in range(options.repeat)]
            results["web app: start to first answer"] = median_run([run for run, _ in web])
            answer_only = statistics.median(seconds for _, seconds in web)
        print_table(results, answer_only, options.repeat)


def print_table(results: dict[str, Run], answer_only_s: float | None, repeat: int) -> None:
    print(f"| command | wall s (median of {repeat}) | peak RSS MiB | target |")
    print("|---|---:|---:|---|")
    for name, run in results.items():
        target = TARGETS_S.get(name)
        verdict = (
            ""
            if target is None
            else f"≤ {target:g} s " + ("met" if run.wall_s <= target else "MISSED")
        )
        print(f"| {name} | {run.wall_s:.2f} | {run.peak_rss_mib:.0f} | {verdict} |")
    if answer_only_s is not None:
        print(f"| web app: the first `/ask` call alone | {answer_only_s:.2f} | | |")


if __name__ == "__main__":
    main()
