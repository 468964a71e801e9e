"""Placement: every desired slice on the GPU pool (ARCHITECTURE §1, *fit*).

* ``pool`` — free share and memory per card, best-fit placement, trials that commit or roll
  back;
* ``fit`` — workloads claim slices by priority; a resize is all-or-nothing; what does not fit
  is capped or refitted at a smaller slice;
* ``preemption`` — which lower-priority gangs to suspend when higher-priority work does not
  fit;
* ``resume`` — suspended gangs come back when the forecast leaves room.

Purely computational, no side effects beyond the pool a fit owns.
"""
