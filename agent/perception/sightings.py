"""Objects seen over time: the detector's per-frame objects become one sighting per stretch.

The object detector runs on sampled frames only (`object_fps`); a label seen again within
`gap_s` of its last sighting continues the same stretch, so one cup held for a minute is one
sighting, not sixty. Each sighting keeps its best box and score, and how many of the label the
busiest frame held (a crowd of walkers is one "person" sighting of up to N at once).
"""

from collections.abc import Iterable

from agent.state import ObjectSighting


def object_sightings(
    frames: Iterable[tuple[float, list | None]], gap_s: float, *, still: bool = False
) -> list[ObjectSighting]:
    """Sightings from (time_s, objects) per frame in time order; `objects` None = the detector
    did not run on that frame (it neither continues nor ends a stretch)."""
    open_by_label: dict[str, dict] = {}
    done: list[dict] = []
    for time_s, objects in frames:
        if objects is None:
            continue
        by_label: dict[str, list] = {}
        for seen in objects:
            by_label.setdefault(seen.label, []).append(seen)
        for label, seen in by_label.items():
            best = max(seen, key=lambda o: o.score)
            current = open_by_label.get(label)
            if current is not None and time_s - current["end_s"] > gap_s:
                done.append(open_by_label.pop(label))
                current = None
            if current is None:
                current = open_by_label[label] = {
                    "label": label,
                    "start_s": time_s,
                    "score": -1.0,
                    "count": 0,
                    "frames": 0,
                }
            current["end_s"] = time_s
            current["frames"] += 1
            current["count"] = max(current["count"], len(seen))
            if best.score > current["score"]:
                current.update(score=best.score, bbox=list(best.box), best_s=time_s)
    done.extend(open_by_label.values())
    sightings = [
        ObjectSighting(
            label=s["label"],
            start_s=0.0 if still else round(s["start_s"], 3),
            end_s=0.0 if still else round(s["end_s"], 3),
            score=round(float(s["score"]), 3),
            bbox=[round(float(v), 4) for v in s["bbox"]],
            best_s=0.0 if still else round(s["best_s"], 3),
            count=s["count"],
            frames=s["frames"],
        )
        for s in done
    ]
    return sorted(sightings, key=lambda s: (s.start_s, s.label))
