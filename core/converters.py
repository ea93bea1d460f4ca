"""Path converters shared by the apps' URLs."""

import uuid


class UUIDAnyCaseConverter:
    """A UUID in either letter case, as ``UUIDField`` reads one in a body or a query.

    Django's ``<uuid:>`` matches lower-case hex only, so an upper-cased id (as
    some clients and tools write them) would be a 404 on one route and found
    on the next.
    """

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value: uuid.UUID | str) -> str:
        return str(value)
