"""behavior-agent: questions about human behavior in long videos, answered with evidence."""

__version__ = "0.1.0"
