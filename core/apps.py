from django.apps import AppConfig
from django.conf import settings
from django.core.signals import request_started
from django.db import close_old_connections, reset_queries


def request_start_without_database_hooks() -> None:
    """Take Django's database hooks off ``request_started``: under ASGI they cost a thread hop
    per request, and here they have nothing to do.

    Django closes a thread's stale connections when a request starts and when
    it ends. Here connections are pooled with ``CONN_MAX_AGE`` 0, and a
    request's sync code runs on the thread lent to it (``core.asgi``), whose
    connection Django closes when the request ends (``request_finished``, on
    that thread): at the start there is none to close. ``reset_queries``
    empties the query log, which is kept only with ``DEBUG`` (then it stays).
    Any sync receiver makes Django send the signal through a thread.
    """
    request_started.disconnect(close_old_connections)
    if not settings.DEBUG:
        request_started.disconnect(reset_queries)


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        request_start_without_database_hooks()
