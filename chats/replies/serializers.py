"""A reply on the wire: the new message's input, and the JSON answer to it."""

from rest_framework import serializers

from chats.conversations.serializers import MessageSerializer
from core.fields import StrictCharField


class MessageInputSerializer(serializers.Serializer):
    content = StrictCharField(trim_whitespace=False, allow_blank=True)
    parent_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text=(
            "An assistant reply of the session to continue from (an edit: a new branch beside the "
            "question that followed it). Absent or null: the current branch."
        ),
    )


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()


class ReplySerializer(serializers.Serializer):
    """The JSON answer (``Accept: application/json``) to a new message."""

    user_message = MessageSerializer()
    assistant_message = MessageSerializer()
    finish_reason = serializers.CharField(help_text="Why the reply ended: stop, length, stopped, error…")
    usage = UsageSerializer()
    cost = serializers.IntegerField()
    balance = serializers.IntegerField()
