"""Waits for a web app started in another process to answer, or says why it never did."""

import subprocess
import time
import urllib.error
import urllib.request


def wait_until_serving(
    url: str, process: subprocess.Popen, timeout_s: float, poll_s: float = 0.2
) -> str | None:
    """None once `url` answers 200; otherwise why not (the process exited, or time ran out)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"the web app exited with {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet
        time.sleep(poll_s)
    return f"the web app did not come up in {timeout_s:.0f} s"
