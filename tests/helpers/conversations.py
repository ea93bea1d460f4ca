"""Sessions made and listed through the API, for the conversation tests."""

from datetime import timedelta

from django.utils import timezone
from model_bakery import baker

from chats.models import ChatSession


def make_session(user, category, *, minutes_ago: int = 0, **fields) -> ChatSession:
    session = baker.make(ChatSession, user=user, category=category, **fields)
    ChatSession.objects.filter(pk=session.pk).update(
        updated_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    session.refresh_from_db()
    return session


def listed(client, query: str = "") -> list[str]:
    response = client.get(f"/api/sessions/{query}")
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def ids(*sessions) -> list[str]:
    return [str(session.id) for session in sessions]
