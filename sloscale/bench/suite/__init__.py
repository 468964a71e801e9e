"""``sloscale bench --suite``: an evaluation no single trace can dominate.

Every request-rate trace (``cells``) x seeds x regimes (cold start, long); per cell sloscale,
the cheapest HPA utilisation target and requests-per-second target that meet the objective
(``search``), ``hpa-fixed`` (one target for every cell) and the oracle; the issue's checks and
the aggregate (``aggregate``); baseline results cached by code hash (``cache``); the replays
spread over worker processes (``schedule``); ``sloscale demo`` at several seeds (``demo``).
``cli`` is the command, ``output`` the table and JSON.
"""
