"""Cluster benchmark: the devset clips indexed locally and with `index --ray` on 1 and 2 workers.

Each run is the real command in its own process with a fresh library (BEHAVIOR_AGENT_HOME in a
temporary folder), so every wall time includes start-up: model loads (once in the local
process, once in each Ray worker) and, for `--ray`, starting a local Ray (RAY_ADDRESS unset)
or joining the cluster RAY_ADDRESS names. It prints one table: wall time, the ratio to the
local run, videos and clips indexed, and whether each library equals the local one (same
videos, clips and detections).

On a machine with 2 cores the gain is small by construction: one local process already keeps
a core busy (decoding and mediapipe use threads), and 2 Ray workers also pay for Ray itself
and a second set of models. Where other work shares those cores, the numbers say more about
the load than about Ray; the table prints the load average before and after.

Run: `nice -n 5 .venv/bin/python benchmarks/cluster_bench.py [--devset ../shared/devset]
[--limit N] [--workers 1 2]`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.cli.index_commands import expand_inputs

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "behavior-agent")
KINDS = ("actions", "gestures", "emotions")


def devset_files(devset: Path, limit: int | None) -> list[Path]:
    """The devset's videos and stills, kind by kind, in name order (the first `limit`)."""
    files = [f for kind in KINDS for f in expand_inputs([devset / kind])]
    return files[:limit] if limit else files


def index_run(files: list[Path], home: Path, ray_workers: int | None) -> dict:
    """One `behavior-agent index` over `files`: wall time and the library it made."""
    args = [CLI, "index", "--json", *map(str, files)]
    if ray_workers is not None:
        args[2:2] = ["--ray", "--workers", str(ray_workers)]
    env = {**os.environ, "BEHAVIOR_AGENT_HOME": str(home)}
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    if not done.stdout.strip():
        sys.exit(f"index failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    library = sorted((v["sha256"], v["clips"], v["detections"]) for v in summary["indexed"])
    return {
        "wall_s": wall_s,
        "library": library,
        "failed": len(summary["failed"]),
        "pids": len({v["worker"]["pid"] for v in summary["indexed"] if "worker" in v}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devset", type=Path, default=REPO.parent / "shared" / "devset")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N files.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    options = parser.parse_args()
    files = devset_files(options.devset, options.limit)
    if not files:
        sys.exit(f"no devset files under {options.devset}/{{{','.join(KINDS)}}}")
    load_before = os.getloadavg()[0]
    runs: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as scratch:
        runs.append(("local", index_run(files, Path(scratch) / "local", None)))
        for workers in options.workers:
            home = Path(scratch) / f"ray{workers}"
            runs.append((f"--ray --workers {workers}", index_run(files, home, workers)))
    load_after = os.getloadavg()[0]
    local = runs[0][1]
    print(
        f"{len(files)} devset files; {os.cpu_count()} CPUs; "
        f"load average {load_before:.1f} before, {load_after:.1f} after"
    )
    print(
        f"{'run':<20} {'wall s':>8} {'speed-up':>8} {'videos':>6} {'clips':>6} {'failed':>6}  same"
    )
    for name, run in runs:
        clips = sum(row[1] for row in run["library"])
        same = "yes" if run["library"] == local["library"] else "NO"
        print(
            f"{name:<20} {run['wall_s']:>8.1f} {local['wall_s'] / run['wall_s']:>7.2f}× "
            f"{len(run['library']):>6} {clips:>6} {run['failed']:>6}  {same}"
        )


if __name__ == "__main__":
    main()
