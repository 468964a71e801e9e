"""The planner's model of the GPU inventory: free share and memory per card, best-fit
placement, and trial placements that are committed or rolled back as a whole.

A rollback restores the pool exactly as it was when the trial began (free share, memory and
the order best fit visits cards in), so a failed attempt leaves no trace and needs no
hand-written undo. Purely computational.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from controller.domain import Inventory

Slice = tuple[str, int, int]
"""One placed slice: (card id, share %, memory MiB)."""

Levels = list[dict[str, None]]


@dataclass(frozen=True, slots=True)
class _Saved:
    free_pct: dict[str, int]
    free_mib: dict[str, int]
    levels: Levels


class SlicePool:
    """Free share and memory per card, with best-fit placement in O(cards at one share level)."""

    def __init__(self, inventory: Inventory | None = None):
        self.free_pct: dict[str, int] = {}
        self.free_mib: dict[str, int] = {}
        self._levels: Levels = [{} for _ in range(101)]
        if inventory is None:
            return
        used_pct = inventory.used_pct_by_card()
        used_mib = inventory.used_mib_by_card()
        for c in inventory.cards:
            free = max(0, c.capacity_pct - used_pct.get(c.card_id, 0))
            self.free_pct[c.card_id] = free
            self.free_mib[c.card_id] = max(0, c.memory_mib - used_mib.get(c.card_id, 0))
            self._levels[min(100, free)][c.card_id] = None

    def copy(self) -> SlicePool:
        out = SlicePool()
        out._restore(self._save())
        return out

    def _save(self) -> _Saved:
        return _Saved(
            dict(self.free_pct), dict(self.free_mib), [dict(level) for level in self._levels]
        )

    def _restore(self, saved: _Saved) -> None:
        self.free_pct = dict(saved.free_pct)
        self.free_mib = dict(saved.free_mib)
        self._levels = [dict(level) for level in saved.levels]

    @contextmanager
    def trial(self, *, on_rollback: Callable[[], None] = lambda: None) -> Iterator[Trial]:
        """A trial placement: unless ``commit()`` is called inside the block, the pool is put
        back exactly as it was (and ``on_rollback`` runs, for state kept beside the pool)."""
        trial = Trial()
        saved = self._save()
        try:
            yield trial
        finally:
            if not trial.committed:
                self._restore(saved)
                on_rollback()

    def place(self, share_pct: int, mib: int) -> str | None:
        """Best fit: the card with the least free share that holds the slice."""
        for level in range(max(0, share_pct), 101):
            for card in self._levels[level]:
                if self.free_mib[card] >= mib:
                    self._move(card, -share_pct, -mib)
                    return card
        return None

    def place_all(self, demand: Iterable[tuple[int, int]]) -> list[Slice] | None:
        """Place every slice of ``demand`` or none of them (a gang)."""
        with self.trial() as trial:
            placed: list[Slice] = []
            for pct, mib in demand:
                card = self.place(pct, mib)
                if card is None:
                    return None
                placed.append((card, pct, mib))
            trial.commit()
            return placed

    def place_up_to(self, demand: Sequence[tuple[int, int]]) -> list[Slice]:
        """Place the slices of ``demand`` in order until one does not fit."""
        placed: list[Slice] = []
        for pct, mib in demand:
            card = self.place(pct, mib)
            if card is None:
                break
            placed.append((card, pct, mib))
        return placed

    def placeable(self, demand: Sequence[tuple[int, int]]) -> int:
        """How many slices of ``demand``, in order, a trial placement gets onto the pool."""
        with self.trial():
            return len(self.place_up_to(demand))

    def release(self, card: str, share_pct: int, mib: int) -> None:
        if card in self.free_pct:
            self._move(card, share_pct, mib)

    def release_all(self, slices: Iterable[Slice]) -> None:
        for card, pct, mib in slices:
            self.release(card, pct, mib)

    def _move(self, card: str, d_pct: int, d_mib: int) -> None:
        del self._levels[min(100, max(0, self.free_pct[card]))][card]
        self.free_pct[card] += d_pct
        self.free_mib[card] += d_mib
        self._levels[min(100, max(0, self.free_pct[card]))][card] = None

    def total_free_pct(self) -> int:
        return sum(self.free_pct.values())


@dataclass(slots=True)
class Trial:
    """A trial on a ``SlicePool``: kept only when committed."""

    committed: bool = field(default=False)

    def commit(self) -> None:
        self.committed = True
