from rest_framework import serializers

from chats.models import Category, ChatSession, Message
from core.fields import StrictCharField, StrictSlugField


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["slug", "name", "description", "prompt_price", "completion_price"]
        read_only_fields = fields


class SessionSerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    message_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = ChatSession
        fields = [
            "id",
            "category",
            "title",
            "notes",
            "message_count",
            "created_at",
            "updated_at",
            "last_message_at",
        ]
        read_only_fields = fields


class SessionCreateInputSerializer(serializers.Serializer):
    category = StrictSlugField(max_length=50)
    title = StrictCharField(max_length=200, required=False, allow_blank=True, default="")


class SessionRenameInputSerializer(serializers.Serializer):
    title = StrictCharField(max_length=200, allow_blank=True)


class SessionNotesInputSerializer(serializers.Serializer):
    notes = StrictCharField(max_length=20000, allow_blank=True, trim_whitespace=False)


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "role",
            "content",
            "status",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "created_at",
        ]
        read_only_fields = fields


class MessageInputSerializer(serializers.Serializer):
    content = StrictCharField(trim_whitespace=False, allow_blank=True)


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()


class ReplySerializer(serializers.Serializer):
    """The JSON answer (``Accept: application/json``) to a new message."""

    user_message = MessageSerializer()
    assistant_message = MessageSerializer()
    usage = UsageSerializer()
    cost = serializers.IntegerField()
    balance = serializers.IntegerField()
