"""Fills the prompt templates in `prompts/` (their JSON examples keep their braces)."""

import re

from agent.errors import BehaviorAgentError
from agent.resources import load_prompt

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def render_prompt(name: str, **values: str) -> str:
    """`prompts/<name>.txt` with each `{key}` replaced; the template's JSON braces stay.

    `str.format` cannot be used: the templates show the expected JSON reply, full of braces.
    A placeholder without a value is an error (a template and its caller disagree).
    """
    template = load_prompt(name)
    missing = sorted({m for m in _PLACEHOLDER.findall(template) if m not in values})
    if missing:
        raise BehaviorAgentError(
            f"Prompt '{name}' needs values for {missing}; the template and the code disagree."
        )
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
