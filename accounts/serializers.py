from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models
from rest_framework import serializers

from accounts.models import LOGIN_ID_MAX_LENGTH, ApiKey, User, validate_login_key_length
from core.fields import AwareDateTimeField, StrictCharField, StrictEmailField, StrictPositiveIntegerField


class LoginIdField(StrictCharField):
    """A login id, NFKC-normalised as Django's ``UsernameField`` does (fullwidth ``ada`` is ``ada``).

    Normalising can lengthen the text, so ``max_length`` is checked on the result.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(max_length=LOGIN_ID_MAX_LENGTH, **kwargs)

    def to_internal_value(self, data) -> str:
        value = super().to_internal_value(data)
        if len(value) > LOGIN_ID_MAX_LENGTH:
            return value  # too long already; normalising it would only cost time
        return User.normalize_username(value)


class UserSerializer(serializers.ModelSerializer):
    # Declared so that the schema says what is true: the e-mail address may be empty.
    email = serializers.EmailField(read_only=True, allow_blank=True)

    class Meta:
        model = User
        fields = ["id", "login_id", "email", "display_name", "date_joined"]
        read_only_fields = fields


class RegisterInputSerializer(serializers.Serializer):
    login_id = LoginIdField(validators=[UnicodeUsernameValidator(), validate_login_key_length])
    password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)
    display_name = StrictCharField(max_length=150, required=False, allow_blank=True, default="")
    email = StrictEmailField(required=False, allow_blank=True, default="")


class LoginInputSerializer(serializers.Serializer):
    login_id = LoginIdField()
    password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)


class RefreshInputSerializer(serializers.Serializer):
    refresh = StrictCharField(max_length=4096)


class ProfileInputSerializer(serializers.Serializer):
    display_name = StrictCharField(max_length=150, required=False, allow_blank=True)
    email = StrictEmailField(required=False, allow_blank=True)


class PasswordInputSerializer(serializers.Serializer):
    old_password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)
    new_password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)


class GoogleInputSerializer(serializers.Serializer):
    id_token = StrictCharField(max_length=8192)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class AuthResultSerializer(TokenPairSerializer):
    user = UserSerializer()


# --- Personal API keys ---------------------------------------------------------


class ApiKeySerializer(serializers.ModelSerializer):
    models = serializers.ListField(
        source="allowed_models",
        child=serializers.CharField(),
        read_only=True,
        help_text="The model ids (or category slugs) it may use on /v1/; empty: every model.",
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "last_used_at",
            "expires_at",
            "monthly_cap",
            "models",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    secret = serializers.CharField(read_only=True, help_text="The key itself (pk-…): shown this once only.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "secret"]
        read_only_fields = fields


class ApiKeyCreateInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    expires_at = AwareDateTimeField(
        required=False, allow_null=True, default=None, help_text="ISO 8601 with a time zone; in the future."
    )
    monthly_cap = StrictPositiveIntegerField(
        max_value=models.BigIntegerField.MAX_BIGINT,
        required=False,
        allow_null=True,
        default=None,
        help_text="Credits this key may spend per calendar month (UTC); none for no cap.",
    )
    models = serializers.ListField(
        child=StrictCharField(max_length=100),
        required=False,
        default=list,
        max_length=100,
        help_text="Model ids (or category slugs) the key may use on /v1/; empty or left out: every model.",
    )
