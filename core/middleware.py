"""Middleware of our own."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware

from core.views import API_PREFIXES, bad_request, page_not_found, server_error


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, able to sit in an async middleware chain.

    WhiteNoise's middleware is sync-only, so under ASGI Django would run every
    request, the streamed replies included, through a thread hop around it.
    Looking a path up in WhiteNoise's table is a dict lookup; only serving an
    actual static file (or, with ``DEBUG``, searching the disk) goes to a
    thread.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, settings=None) -> None:
        if settings is None:
            super().__init__(get_response)
        else:
            super().__init__(get_response, settings=settings)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)


class APIErrorPagesMiddleware:
    """Django's HTML error pages become the JSON error shape under ``/api/`` and ``/auth/``.

    With ``DEBUG`` off, the project's ``handler404``/``handler500``/``handler400`` (in
    :mod:`core.views`) already answer JSON there. With ``DEBUG`` on, Django bypasses them and
    renders its technical pages (a URL that resolves nowhere, an exception in a plain view),
    which an API client cannot read: this turns those into the same JSON as the handlers.
    It sits outside ``CommonMiddleware``, so a missing trailing slash is still redirected.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        return self.as_json(request, self.get_response(request))

    async def __acall__(self, request):
        return self.as_json(request, await self.get_response(request))

    def process_exception(self, request, exception):
        """Remember a view's exception (say, a body over the limit) for the 400 handler's choice."""
        request.view_exception = exception

    @staticmethod
    def as_json(request, response):
        if not request.path.startswith(API_PREFIXES):
            return response
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        if response.status_code == 404:
            return page_not_found(request, None)
        if response.status_code == 500:
            return server_error(request)
        if response.status_code == 400:
            return bad_request(request, getattr(request, "view_exception", None))
        return response
