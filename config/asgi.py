"""ASGI entry point: the production and development server both run this."""

import os

from django.core.asgi import get_asgi_application

from config.env import exit_on_setting_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

with exit_on_setting_error():  # a bad setting: one line naming it, and uvicorn exits
    django_application = get_asgi_application()

from core.asgi import RequestBodyLimit  # needs settings, configured above

application = RequestBodyLimit(django_application)
