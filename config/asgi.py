"""ASGI entry point: the production and development server both run this."""

import os

from django.core.asgi import get_asgi_application

from config.env import exit_on_setting_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

with exit_on_setting_error():  # a bad setting: one line naming it, and uvicorn exits
    django_application = get_asgi_application()

from chats.reply_runner import replies_shutdown, replies_startup, shutdown_asked
from core.asgi import Lifespan, RequestBodyLimit

# SIGTERM: running replies may finish for REPLY_SHUTDOWN_GRACE, then are stopped and settled.
application = Lifespan(
    RequestBodyLimit(django_application),
    on_startup=replies_startup,
    on_signal=shutdown_asked,
    on_shutdown=replies_shutdown,
)
