"""Google sign-in with an ID token (to be completed)."""

from django.http import HttpRequest

from accounts.models import User
from core.errors import TokenNotValid


def google_sign_in(*, request: HttpRequest, id_token: str) -> tuple[User, bool]:
    raise TokenNotValid("Google sign-in is not configured.")
