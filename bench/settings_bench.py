"""Settings for the benchmarks: the production settings, with a URLconf that adds a bare view.

``DJANGO_SETTINGS_MODULE=bench.settings_bench`` serves everything ``config.urls``
serves plus ``GET /bench/bare`` (see ``bench/urls_bench.py``), the baseline of
``bench/api_overhead.py``. The production URLconf never has that route.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_bench"
