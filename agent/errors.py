"""The one error family the user sees: every message says what went wrong and how to fix it."""


class BehaviorAgentError(Exception):
    """A problem the user can act on (bad input, missing weights, bad settings).

    The CLI and the web app show `str(error)` as it is, without a traceback, so the message
    must name the thing at fault and say what to do about it.
    """


class VideoError(BehaviorAgentError):
    """A video (or image) that cannot be read, is empty, or is beyond the configured caps."""


class ConfigError(BehaviorAgentError):
    """A setting or an environment override with a value that cannot be used."""


class ModelError(BehaviorAgentError):
    """Model weights that are missing, in the wrong layout, or too big for the device."""
