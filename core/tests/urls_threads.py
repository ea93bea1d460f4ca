"""Sync views that report the thread they run on, for the request-thread tests."""

import threading

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

# Two requests that each wait for the other: they finish only if they run on two threads.
MET = {"a": threading.Event(), "b": threading.Event()}


def where(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"thread": threading.get_ident()})


def meet(request: HttpRequest, me: str, other: str) -> JsonResponse:
    MET[me].set()
    return JsonResponse({"thread": threading.get_ident(), "met": MET[other].wait(timeout=5)})


def query(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"thread": threading.get_ident()})


urlpatterns = [
    path("where", where),
    path("meet/<str:me>/<str:other>", meet),
    path("query", query),
]
