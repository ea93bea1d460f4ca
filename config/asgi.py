"""ASGI entry point: the production and development server both run this."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_asgi_application()

from core.asgi import RequestBodyLimit  # noqa: E402  (needs settings, configured above)

application = RequestBodyLimit(django_application)
