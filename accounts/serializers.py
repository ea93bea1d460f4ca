from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from accounts.models import LOGIN_ID_MAX_LENGTH, User, validate_login_key_length
from core.fields import StrictCharField, StrictEmailField


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
