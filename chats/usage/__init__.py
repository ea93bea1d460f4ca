"""Usage: what users spent, for ``GET /api/usage/``, the ``usage_report`` command and
the admin's usage page."""
