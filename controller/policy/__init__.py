"""The policy stages of a plan, each with its own config and memory (ARCHITECTURE §1, *plan*).

* ``headroom`` — how much of the latency target is kept in reserve, steered by the error
  budget's burn rate;
* ``replicas`` — the replicas a rate needs at a slice, and the rate to size for;
* ``slices`` — which slice sizes are worth considering and when a resize pays;
* ``size`` — the cheapest (replicas, slice) from the three above;
* ``stabilise`` — dead band, scale-down delay, step limit and bounds (the HPA's rules);
* ``reclaim`` — idle Deployments and Jobs give their slices back.

Each stage reads a ``WorkloadInput`` (``inputs``) and adds a ``Condition`` to the proposal it
passes on (``verdict``). ``controller.placement`` fits the result on the GPU pool and
``controller.plan`` runs the stages in order. Purely computational, no side effects.
"""
