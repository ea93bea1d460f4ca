"""WSGI entry point, for tools that want one; streaming replies need ASGI."""

import os

from django.core.wsgi import get_wsgi_application

from config.env import exit_on_setting_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

with exit_on_setting_error():
    application = get_wsgi_application()
