from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from accounts.models import User
from core.fields import StrictCharField, StrictEmailField


class UserSerializer(serializers.ModelSerializer):
    # Declared so that the schema says what is true: the e-mail address may be empty.
    email = serializers.EmailField(read_only=True, allow_blank=True)

    class Meta:
        model = User
        fields = ["id", "login_id", "email", "display_name", "date_joined"]
        read_only_fields = fields


class RegisterInputSerializer(serializers.Serializer):
    login_id = StrictCharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)
    display_name = StrictCharField(max_length=150, required=False, allow_blank=True, default="")
    email = StrictEmailField(required=False, allow_blank=True, default="")


class LoginInputSerializer(serializers.Serializer):
    login_id = StrictCharField(max_length=150)
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
