"""The JSON parser every endpoint uses."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's parser, but JSON nested too deep for Python's decoder is the client's error.

    ``json.load`` raises ``RecursionError`` (not ``ValueError``) on, say, 100,000
    nested brackets, which DRF would let through as a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
