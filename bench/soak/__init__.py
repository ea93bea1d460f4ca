"""The race soak's parts; ``bench/race_soak.py`` is the command that runs them.

The reply lives here because three parts must agree on it: the fake upstream
streams it, the clients and the report check every stored reply against it.
"""

#: The reply of a normal stream: 20 deltas.
CHUNKS = [f" w{index:02d}" for index in range(20)]
REPLY = "".join(CHUNKS)
