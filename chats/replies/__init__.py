"""The life of a reply: its prompt, reservation and settlement, the task that runs it,
its event log, and its HTTP endpoints."""
