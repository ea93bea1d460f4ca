"""Middleware of our own."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


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
