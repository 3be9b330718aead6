"""The labelled development set (`devset.yaml`): items, generated stills, and judging detections.

Shared by `recognition_eval.py` and `reliability_table.py`. Media come from ../shared/media
(or BEHAVIOR_AGENT_SHARED_MEDIA); generated stills are written into a folder the caller gives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

HERE = Path(__file__).resolve().parent
SHARED_MEDIA = Path(
    os.environ.get("BEHAVIOR_AGENT_SHARED_MEDIA", HERE.parent.parent / "shared" / "media")
)
_EXIF_ORIENTATION = 0x0112
_ROTATED_90_CW = 6  # "rotate 90 degrees clockwise to display"


@dataclass
class Event:
    label: str
    start_s: float | None = None
    end_s: float | None = None


@dataclass
class DevItem:
    """One labelled development file."""

    name: str
    path: Path
    annotated: list[str]
    present: list[Event]
    ambiguous: list[str] = field(default_factory=list)

    def judge(self, kind: str, label: str, start_s: float, end_s: float) -> bool | None:
        """True/False for a detection of an annotated kind; None where it is not scored."""
        if kind not in self.annotated or label in self.ambiguous:
            return None
        for event in self.present:
            if event.label != label:
                continue
            if event.start_s is None or start_s <= event.end_s and end_s >= event.start_s:
                return True
        return False


def load_devset(generated_dir: Path) -> list[DevItem]:
    """Every development item; generated stills are (re)made in `generated_dir`."""
    if not (SHARED_MEDIA / "manifest.csv").is_file():
        raise SystemExit(
            f"{SHARED_MEDIA} has no manifest.csv: set BEHAVIOR_AGENT_SHARED_MEDIA to the shared "
            "media folder"
        )
    spec = yaml.safe_load((HERE / "devset.yaml").read_text(encoding="utf-8"))
    generated_dir = Path(generated_dir)
    generated_dir.mkdir(parents=True, exist_ok=True)
    items = [_item(name, SHARED_MEDIA / name, entry) for name, entry in spec["media"].items()]
    for name, entry in spec["generated"].items():
        path = generated_dir / name
        if _generate(path, entry["from"]):
            items.append(_item(name, path, entry))
    return items


def _item(name: str, path: Path, entry: dict) -> DevItem:
    return DevItem(
        name=name,
        path=path,
        annotated=list(entry["annotated"]),
        present=[Event(**e) for e in entry.get("present", [])],
        ambiguous=list(entry.get("ambiguous", [])),
    )


def _generate(path: Path, recipe: dict) -> bool:
    """Write a generated still; False when its source is not available here."""
    if "skimage" in recipe:
        try:
            from skimage import data
        except ImportError:
            print(f"note: scikit-image not installed; {path.name} left out")
            return False
        Image.fromarray(getattr(data, recipe["skimage"])()).save(path)
        return True
    with Image.open(SHARED_MEDIA / recipe["media"]) as source:
        hand = source.convert("RGB")
    side = int(recipe["side_px"])
    hand = hand.resize((side, side), Image.BICUBIC)
    rng = np.random.default_rng(0)
    background = np.asarray(hand)[:20, :20].reshape(-1, 3).mean(axis=0)
    canvas = np.clip(background + rng.normal(0, 6, (3000, 4000, 3)), 0, 255).astype(np.uint8)
    x, y = (int(v) - side // 2 for v in recipe["at"])
    canvas[y : y + side, x : x + side] = np.asarray(hand)
    photo = Image.fromarray(canvas)
    if recipe.get("exif_rotate"):
        # Stored rotated a quarter turn back, with the tag that tells viewers to turn it.
        exif = Image.Exif()
        exif[_EXIF_ORIENTATION] = _ROTATED_90_CW
        photo.rotate(90, expand=True).save(path, quality=92, exif=exif)
    else:
        photo.save(path, quality=92)
    return True
