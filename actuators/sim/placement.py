"""Where a GPU slice goes: best-fit bin-packing over cards, one pod or a whole gang.

Why best-fit: it is what GPU-sharing schedulers (HAMi's ``binpack`` policy, Volcano's vGPU
binpack) do to keep whole cards free for large slices, and it is the policy under which
fragmentation is realistic: free share scattered in small pieces across cards cannot hold a
large slice even when the total would.

Purely computational: the free-capacity lists are passed in and updated by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence


def best_fit(
    free_pct: Sequence[int], free_mib: Sequence[int], share_pct: int, memory_mib: int
) -> int | None:
    """The card with the least free share that fits both share and memory (ties: least free
    memory, then card order); ``None`` if no card fits."""
    best: int | None = None
    best_key = (0, 0)
    for i, (pct, mib) in enumerate(zip(free_pct, free_mib, strict=True)):
        if pct >= share_pct and mib >= memory_mib:
            key = (pct, mib)
            if best is None or key < best_key:
                best, best_key = i, key
    return best


def place_gang(
    free_pct: list[int], free_mib: list[int], requests: Sequence[tuple[int, int]]
) -> list[int] | None:
    """Place every ``(share_pct, memory_mib)`` request or none (gang scheduling).

    Largest requests go first, each best-fit. On success the free lists are updated and the
    card of each request (in the order given) is returned; on failure nothing changes.
    """
    pct = list(free_pct)
    mib = list(free_mib)
    cards: list[int] = [0] * len(requests)
    for i in sorted(range(len(requests)), key=lambda j: (-requests[j][0], -requests[j][1], j)):
        share, memory = requests[i]
        card = best_fit(pct, mib, share, memory)
        if card is None:
            return None
        pct[card] -= share
        mib[card] -= memory
        cards[i] = card
    free_pct[:] = pct
    free_mib[:] = mib
    return cards
