"""The fault drill's parts; ``bench/fault_drill.py`` is the command that runs them.

The reply lives here because the fake upstream streams it and the report
compares what clients were sent and what was stored against it.
"""

#: Deltas of one reply: 40 at ``CHUNK_DELAY`` seconds, so a reply streams for about 4 s and a
#: fault injected while ~20 replies run lands in the middle of most of them.
CHUNKS = [f" t{index:02d}" for index in range(40)]
CHUNK_DELAY = 0.1
REPLY = "".join(CHUNKS)
