"""ASGI entry point: the production and development server both run this."""

import os

import django

from config.env import exit_on_setting_error
from core.asgi import ASGIHandler, Lifespan, RequestBodyLimit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

with exit_on_setting_error():  # a bad setting: one line naming it, and uvicorn exits
    django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application, with our handler
    django_application = ASGIHandler()

from chats.replies.runner import replies_shutdown, replies_startup, shutdown_asked

# What answers each request. Without a lifespan of its own: a server (or a test's in-process
# client) that runs only this never touches the reply runtime's state.
http_application = RequestBodyLimit(django_application)

# The worker: SIGTERM lets running replies finish for REPLY_SHUTDOWN_GRACE, then stops and settles them.
application = Lifespan(
    http_application,
    on_startup=replies_startup,
    on_signal=shutdown_asked,
    on_shutdown=replies_shutdown,
)
