"""The search for the cheapest target that meets the objective, one integer point at a time.

Purely computational: ``TargetSearch`` is a state machine that names the next target to
replay (``next_target``) and is told whether it met (``record``); the caller replays. That
lets the suite interleave many searches over one pool of worker processes.

Assumption: attainment falls as the target rises (a higher target holds fewer replicas), so
the targets that meet are an interval ``[lo, best]`` and the cheapest is ``best``, the
highest. The search

1. without a ``guess``, bisects the whole range (``lo - 1`` counts as meeting, ``hi + 1`` as
   missing, neither replayed): about log2 of the range's size replays. With one (another
   seed's or regime's answer) it gallops instead: up from a
   target that meets by 1, 1, 2, 4, ... points until one misses, or down from one that misses
   by as many until one meets; ``lo`` missing means no target meets, ``hi`` meeting that
   ``hi`` is best. A guess one or two points off costs one or two replays more;
2. bisects the bracket to one point: ``best`` meets and ``best + 1`` misses (both replayed,
   unless ``best`` is ``hi``, or none meets and ``lo`` missed);
3. checks: replays ``best + 2`` too, and looks for any replayed pair that breaks the
   assumption (a target that misses below one that meets). If there is one, it falls back to
   a linear scan upwards from the highest target that met, until ``SCAN_PATIENCE`` targets
   in a row miss, and reports the violation. ``best`` is then the highest target that met.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SCAN_PATIENCE = 3
"""Targets in a row that must miss before the fallback scan stops."""


class Phase(StrEnum):
    GALLOP = "gallop"
    BISECT = "bisect"
    CHECK = "check"
    SCAN = "scan"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class SearchRange:
    """Integer targets ``lo..hi`` (inclusive) and where the search starts."""

    lo: int
    hi: int

    def clamp(self, target: int) -> int:
        return min(self.hi, max(self.lo, target))


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What a finished search found.

    ``best``: the highest target that met (``None``: none in the range did); ``replayed``:
    every (target, met) replayed, in order; ``monotone``: no replayed target missed below
    one that met; ``at_top``: ``best`` is the range's top, so a higher target might meet too.
    """

    span: SearchRange
    best: int | None
    replayed: tuple[tuple[int, bool], ...]
    violations: tuple[tuple[int, int], ...]  # (missed, met above it)

    @property
    def evaluations(self) -> int:
        return len(self.replayed)

    @property
    def monotone(self) -> bool:
        return not self.violations

    @property
    def at_top(self) -> bool:
        return self.best is not None and self.best >= self.span.hi

    def met(self, target: int) -> bool | None:
        """Whether ``target`` met, if it was replayed."""
        return dict(self.replayed).get(target)


def violations(points: dict[int, bool]) -> tuple[tuple[int, int], ...]:
    """Pairs ``(a, b)``, ``a < b``, where ``a`` missed and ``b`` met: each breaks monotony."""
    misses = sorted(t for t, met in points.items() if not met)
    meets = sorted(t for t, met in points.items() if met)
    return tuple((a, b) for a in misses for b in meets if a < b)


class TargetSearch:
    """Gallop from ``guess``, bisect to one point, check; see the module docstring."""

    def __init__(self, span: SearchRange, guess: int | None = None) -> None:
        if span.lo > span.hi:
            raise ValueError(f"empty range {span.lo}..{span.hi}")
        self.span = span
        self.points: dict[int, bool] = {}
        self.order: list[int] = []
        self.phase = Phase.BISECT if guess is None else Phase.GALLOP
        self._start = span.clamp(span.lo if guess is None else guess)
        self._steps = 0  # gallop steps taken: 1, 1, 2, 4, ... points
        self._met: int | None = None  # highest target known to meet (bracket's low side)
        self._miss: int | None = None  # lowest target known to miss (bracket's high side)
        self._best: int | None = None
        self._pending: int | None = None

    # -- the protocol --------------------------------------------------------------------------

    def next_target(self) -> int | None:
        """The target to replay next; ``None`` once the search is done.

        Asking again before ``record`` returns the same target.
        """
        if self._pending is None and self.phase is not Phase.DONE:
            self._pending = self._advance()
        return self._pending

    def record(self, target: int, met: bool) -> None:
        """The replay of ``target`` met the objective (``met``) or not."""
        if target != self._pending:
            raise ValueError(f"recorded {target}, but the search asked for {self._pending}")
        self._pending = None
        self.points[target] = met
        self.order.append(target)
        if met:
            self._met = target if self._met is None else max(self._met, target)
        else:
            self._miss = target if self._miss is None else min(self._miss, target)

    def result(self) -> SearchResult:
        if self.phase is not Phase.DONE:
            raise ValueError("the search is not finished")
        return SearchResult(
            span=self.span,
            best=self._best,
            replayed=tuple((t, self.points[t]) for t in self.order),
            violations=violations(self.points),
        )

    # -- the steps -----------------------------------------------------------------------------

    def _advance(self) -> int | None:
        """Move through the phases until one names an unreplayed target (or the end)."""
        while True:
            if self.phase is Phase.GALLOP:
                target = self._gallop()
            elif self.phase is Phase.BISECT:
                target = self._bisect()
            elif self.phase is Phase.CHECK:
                target = self._check()
            elif self.phase is Phase.SCAN:
                target = self._scan()
            else:
                return None
            if target is not None:
                return target

    def _gallop(self) -> int | None:
        lo, hi = self.span.lo, self.span.hi
        if not self.points:
            return self._start
        if self._met is not None and self._miss is not None:
            self.phase = Phase.BISECT
            return None
        if self._met is not None:  # everything replayed met: go up
            if self._met >= hi:
                self._best = hi
                self.phase = Phase.CHECK
                return None
            nxt = min(hi, self._met + self._gallop_step())
        else:  # everything replayed missed: go down
            assert self._miss is not None
            if self._miss <= lo:
                self._best = None
                self.phase = Phase.CHECK
                return None
            nxt = max(lo, self._miss - self._gallop_step())
        self._steps += 1
        return nxt

    def _gallop_step(self) -> int:
        return 1 if self._steps < 2 else 2 ** (self._steps - 1)

    def _bisect(self) -> int | None:
        met = self.span.lo - 1 if self._met is None else self._met
        miss = self.span.hi + 1 if self._miss is None else self._miss
        if miss - met <= 1 or miss < met:
            self._best = met if met >= self.span.lo else None
            self.phase = Phase.CHECK
            return None
        return (met + miss) // 2

    def _check(self) -> int | None:
        if self._best is not None:
            for t in (self._best + 1, self._best + 2):
                if t <= self.span.hi and t not in self.points:
                    return t
        if violations(self.points):
            self.phase = Phase.SCAN
            return None
        self.phase = Phase.DONE
        return None

    def _scan(self) -> int | None:
        """Upwards from the highest target that met, until ``SCAN_PATIENCE`` miss in a row."""
        top = max(t for t, met in self.points.items() if met)  # a violation implies one
        for t in range(top + 1, min(self.span.hi, top + SCAN_PATIENCE) + 1):
            if t not in self.points:
                return t  # every replayed target above ``top`` missed
        self._best = top
        self.phase = Phase.DONE
        return None
