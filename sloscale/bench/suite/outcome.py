"""One replay's score as the suite keeps it: the scalars of a ``PolicyResult``, no series.

Purely computational. Small enough to cross process boundaries and to cache as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sloscale.bench.results import PolicyResult


@dataclass(frozen=True, slots=True)
class Outcome:
    label: str  # "sloscale", "oracle", "hpa@63", "rps@104"
    slo_attainment: float | None
    good_minutes: float | None
    gpu_hours: float
    utilisation: float | None
    met: bool
    scale_actions: int
    resize_actions: int
    requests: int
    wall_s: float = 0.0  # how long the replay took (not in the suite's JSON)
    cached: bool = False  # read from the cache, not replayed in this run

    @classmethod
    def of(cls, r: PolicyResult) -> Outcome:
        """The scalars, rounded as the cache stores them: a replayed and a cached outcome of
        the same run are equal and give the same table."""
        return cls(
            label=r.name,
            slo_attainment=_round(r.slo_attainment),
            good_minutes=_round(r.good_minutes),
            gpu_hours=round(r.gpu_hours, 6),
            utilisation=_round(r.utilisation),
            met=r.met,
            scale_actions=r.scale_actions,
            resize_actions=r.resize_actions,
            requests=r.requests,
            wall_s=r.wall_s,
        )

    def to_json(self, *, wall: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "slo_attainment": _round(self.slo_attainment),
            "good_minutes": _round(self.good_minutes),
            "gpu_hours": _round(self.gpu_hours),
            "utilisation": _round(self.utilisation),
            "met": self.met,
            "scale_actions": self.scale_actions,
            "resize_actions": self.resize_actions,
            "requests": self.requests,
        }
        if wall:
            out["wall_s"] = round(self.wall_s, 3)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        def opt(name: str) -> float | None:
            v = data[name]
            return None if v is None else float(v)

        return cls(
            label=str(data["label"]),
            slo_attainment=opt("slo_attainment"),
            good_minutes=opt("good_minutes"),
            gpu_hours=float(data["gpu_hours"]),
            utilisation=opt("utilisation"),
            met=bool(data["met"]),
            scale_actions=int(data["scale_actions"]),
            resize_actions=int(data["resize_actions"]),
            requests=int(data["requests"]),
            wall_s=float(data.get("wall_s", 0.0)),
            cached=True,
        )


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)
