"""ASGI entry point: the production and development server both run this."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from core.handlers import get_asgi_application  # noqa: E402  (imports Django, not the settings)

django_application = get_asgi_application()

from core.asgi import RequestBodyLimit  # noqa: E402  (needs settings, configured above)

application = RequestBodyLimit(django_application)
