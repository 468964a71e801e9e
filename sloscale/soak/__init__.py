"""``sloscale soak``: the real loop on the simulator for days, with faults at the ports.

``faults`` draws the schedule, ``ports`` injects it at the ``Cluster`` and ``MetricsSource``
ports, ``runner`` runs the faulty and the fault-free loop, ``invariants`` checks every tick,
``command`` reports. Nothing in ``controller`` knows about it.
"""
