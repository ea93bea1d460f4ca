from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from accounts.models import User


class UserSerializer(serializers.ModelSerializer):
    # Declared so that the schema says what is true: the e-mail address may be empty.
    email = serializers.EmailField(read_only=True, allow_blank=True)

    class Meta:
        model = User
        fields = ["id", "login_id", "email", "display_name", "date_joined"]
        read_only_fields = fields


class RegisterInputSerializer(serializers.Serializer):
    login_id = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")


class LoginInputSerializer(serializers.Serializer):
    login_id = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class ProfileInputSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)


class PasswordInputSerializer(serializers.Serializer):
    old_password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class GoogleInputSerializer(serializers.Serializer):
    id_token = serializers.CharField(max_length=8192)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class AuthResultSerializer(TokenPairSerializer):
    user = UserSerializer()
