"""`behavior-agent` command line: one module per group of commands, registered on one app."""

import logging
import os
import sys

from agent.cli.app import app
from agent.errors import BehaviorAgentError

# Each module below adds its commands to `app` when imported.
from agent.cli import video_commands  # noqa: E402,F401,I001
from agent.cli import perception_commands  # noqa: E402,F401,I001
from agent.cli import index_commands  # noqa: E402,F401,I001
from agent.cli import vlm_commands  # noqa: E402,F401,I001
from agent.cli import serve_commands  # noqa: E402,F401,I001
from agent.cli import report_commands  # noqa: E402,F401,I001
from agent.cli import ask_commands  # noqa: E402,F401,I001
from agent.cli import eval_commands  # noqa: E402,F401,I001
from agent.cli import kb_commands  # noqa: E402,F401,I001
from agent.cli import model_commands  # noqa: E402,F401,I001


def show_loads() -> None:
    """Print heavy loads ("loading the text embedder, first use in this process") on stderr.

    They come on the `agent.loading` logger whatever the log level; `--quiet` turns them off.
    """
    loading = logging.getLogger("agent.loading")
    if not loading.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        loading.addHandler(handler)
    loading.setLevel(logging.INFO)
    loading.propagate = False


def main() -> None:
    """Entry point: user errors become one clear line on stderr and a non-zero exit."""
    logging.basicConfig(
        level=os.environ.get("BEHAVIOR_AGENT_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    show_loads()
    try:
        app()
    except BehaviorAgentError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # a bug: still one line, with a way to get the traceback
        if os.environ.get("BEHAVIOR_AGENT_DEBUG"):
            raise
        print(
            f"internal error: {type(error).__name__}: {error} "
            "(set BEHAVIOR_AGENT_DEBUG=1 for the traceback and please report it)",
            file=sys.stderr,
        )
        sys.exit(1)
