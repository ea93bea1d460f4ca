"""Pagination shared by every list: ``{"results", "next", "previous"}``.

Cursor pagination keeps pages stable while new rows arrive (a chat grows at
its end) and costs one query per page however deep the client reads.
"""

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 100
