"""What ``OPTIONS`` says a client may send: the fields of the serializer that reads each body."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import clone_request

from core.errors import DomainError


class InputMetadata(SimpleMetadata):
    """``actions`` of an ``OPTIONS`` answer: for each of POST, PUT and PATCH the URL serves, the
    fields of the input serializer of the action behind it.

    DRF's ``SimpleMetadata`` describes ``view.get_serializer()``, the serializer a view answers
    with. Views here read bodies with separate input serializers (strict types, no coercion), so
    DRF listed the answer's fields, every one read-only (``category`` of ``POST /api/sessions/``
    among them), and on a view without a ``serializer_class`` (``/auth/``) it raised: a 500.

    A view names its input serializers by action in ``input_serializer_classes``; a method whose
    action names none (no body, or not described) is left out. As in DRF, a method is listed only
    if the caller may use it: its permissions, and on a detail URL the object itself, are checked.
    """

    methods = ("POST", "PUT", "PATCH")

    def determine_actions(self, request, view) -> dict[str, Any]:
        inputs = getattr(view, "input_serializer_classes", {})
        action_map = getattr(view, "action_map", {})
        actions = {}
        for method in self.methods:
            serializer_class = inputs.get(action_map.get(method.lower()))
            if method not in view.allowed_methods or serializer_class is None:
                continue
            view.request = clone_request(request, method)
            try:
                view.check_permissions(view.request)
                if getattr(view, "detail", False):
                    view.get_object()
            except (exceptions.APIException, PermissionDenied, Http404, DomainError):
                continue
            finally:
                view.request = request
            actions[method] = self.get_serializer_info(serializer_class())
        return actions
