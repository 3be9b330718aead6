"""Formatting and parsing of times; seconds (float) inside, `mm:ss` only at the edges."""

import re

_CLOCK = re.compile(r"^\s*(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*$")


def format_clock(seconds: float, decimals: int = 0) -> str:
    """`75.4` → `01:15` (or `01:15.4` with one decimal); hours appear only when needed."""
    seconds = max(0.0, float(seconds))
    scale = 10**decimals
    total = round(seconds * scale) / scale
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    width = 2 + (decimals + 1 if decimals else 0)
    sec_text = f"{secs:0{width}.{decimals}f}"
    if hours:
        return f"{int(hours)}:{int(minutes):02d}:{sec_text}"
    return f"{int(minutes):02d}:{sec_text}"


def format_span(start_s: float, end_s: float, decimals: int = 0) -> str:
    """A time range as `mm:ss–mm:ss`."""
    return f"{format_clock(start_s, decimals)}–{format_clock(end_s, decimals)}"


def parse_clock(text: str) -> float | None:
    """`2:30` → 150.0, `1:02:03` → 3723.0, `12.5` → 12.5; None when it is not a time."""
    text = text.strip()
    match = _CLOCK.match(text)
    if match:
        hours, minutes, secs = match.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None
