"""Silences what native libraries (decord's C++ logger, mediapipe/TFLite) write straight to fd 2."""

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """Send file descriptor 2 to /dev/null for the block.

    Native loggers bypass Python's `sys.stderr`, so only a descriptor-level redirect hides them.
    Use it around short calls whose chatter is known noise (graph start-up, opening a file whose
    failure we report ourselves), never around long work: other threads' stderr is hidden too.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
