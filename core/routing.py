"""Every API route answers with and without its trailing slash, and no request is redirected.

Django's ``APPEND_SLASH`` answers a request whose URL lacks the slash with a 301 (an HTML page), or
with a ``RuntimeError`` for a POST under ``DEBUG``; a client that follows a 301 turns a POST into a
GET and loses its body. So each route is listed twice (:func:`either_slash`), to the same view.

One spelling is canonical (:func:`canonical_path`): with the slash under ``/api/`` and ``/auth/``,
without it under ``/v1/`` as OpenAI's clients write it. It is the route as the URLconf writes it,
what ``reverse()`` gives, and the one path the OpenAPI schema names for both
(:func:`core.openapi.canonical_endpoints`).
"""

from django.urls import URLPattern, path, re_path
from django.urls.resolvers import RoutePattern

SLASHLESS_PREFIXES = ("/v1/",)
SLASHED_PREFIXES = ("/api/", "/auth/")


def canonical_path(url_path: str) -> str:
    """``url_path`` as the schema and ``reverse()`` spell it; paths outside the API as they are."""
    if url_path.startswith(SLASHLESS_PREFIXES):
        return url_path.rstrip("/")
    if url_path.startswith(SLASHED_PREFIXES) and not url_path.endswith("/"):
        return f"{url_path}/"
    return url_path


def either_slash(patterns: list[URLPattern]) -> list[URLPattern]:
    """Each route, preceded by its twin with the trailing slash added or removed.

    The twin takes the same view and name; listed first, it leaves ``reverse()`` to the route as
    written, since Django reverses a name shared by several patterns to the last of them.
    """
    routes: list[URLPattern] = []
    for pattern in patterns:
        routes += [_twin(pattern), pattern]
    return routes


def _twin(pattern: URLPattern) -> URLPattern:
    if not isinstance(pattern, URLPattern):
        raise TypeError(f"either_slash() takes routes, not includes: {pattern!r}")
    route = str(pattern.pattern)
    if isinstance(pattern.pattern, RoutePattern):
        if route in ("", "/"):
            raise ValueError("The root of a prefix has no slash to add or remove.")
        twin = route[:-1] if route.endswith("/") else f"{route}/"
        return path(twin, pattern.callback, pattern.default_args, name=pattern.name)
    # A router's regex: ^prefix/(?P<pk>[^/.]+)/$ or, without its slash, ...$
    if not route.endswith("$") or route in ("^$", "^/$"):
        raise ValueError(f"Cannot spell {route!r} both ways: a route must end with $ and not be the root.")
    twin = f"{route[:-2]}$" if route.endswith("/$") else f"{route[:-1]}/$"
    return re_path(twin, pattern.callback, pattern.default_args, name=pattern.name)
