"""The previous release keeps writing during a rolling deploy: its INSERTs name none of the columns
this release added, and the database must take them."""

import pytest
from django.db import connection
from model_bakery import baker

from chats.models import ChatSession, Message
from core.db.rows import table

pytestmark = pytest.mark.django_db


def test_a_message_inserted_without_finish_reason_gets_the_empty_default(user, general_category):
    session = baker.make(ChatSession, user=user, category=general_category)
    columns = [field for field in Message._meta.concrete_fields if field.column != "finish_reason"]
    message = Message(session=session, role="user", content="from the previous release")
    values = [field.get_db_prep_save(field.pre_save(message, add=True), connection) for field in columns]
    sql = (
        f"INSERT INTO {table(Message)} ({', '.join(connection.ops.quote_name(f.column) for f in columns)})"
        f" VALUES ({', '.join(['%s'] * len(columns))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)

    assert Message.objects.get(pk=message.pk).finish_reason == ""
