import hashlib
import unicodedata

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

LOGIN_ID_MAX_LENGTH = 150


def login_key(login_id: str) -> str:
    """The form under which two login ids are the same account: NFKC, then case folded.

    ``ada``, ``ADA`` and fullwidth ``ada`` (U+FF41 U+FF44 U+FF41) share one key, and so do
    ``émile`` and ``ÉMILE`` on every database: the comparison is made here, in Python, rather
    than by the database's ``LOWER()`` (ASCII-only on SQLite).
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", login_id).casefold())


def login_key_digest(login_id: str) -> str:
    """A fixed-size digest of ``login_key(login_id)``, for cache keys built from unvalidated input.

    ``surrogatepass``: a JSON body may hold a lone surrogate (``"\\ud800"``) that
    strict UTF-8 refuses to encode; validation rejects it later, but a throttle runs first.
    """
    return hashlib.sha256(login_key(login_id.strip()).encode("utf-8", "surrogatepass")).hexdigest()


def validate_login_key_length(login_id: str) -> None:
    """Normalising can lengthen a login id (``ß`` folds to ``ss``); its key must still fit."""
    if len(login_key(login_id)) > LOGIN_ID_MAX_LENGTH:
        raise ValidationError(
            "This login id is too long once normalised (at most %(max)d characters).",
            code="max_length",
            params={"max": LOGIN_ID_MAX_LENGTH},
        )


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, login_id: str) -> "User":
        # Login ids are unique by their key (NFKC, case folded), so they match that way too.
        return self.get(login_key=login_key(login_id))

    def create_user(self, login_id: str, password: str | None = None, **fields) -> "User":
        if not login_id:
            raise ValueError("A user needs a login id.")
        login_id = self.model.normalize_username(login_id)
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        if "email" in fields:
            fields["email"] = self.normalize_email(fields["email"] or "")
        user = self.model(login_id=login_id, **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, login_id: str, password: str | None = None, **fields) -> "User":
        fields["is_staff"] = True
        fields["is_superuser"] = True
        return self.create_user(login_id, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    login_id = models.CharField(
        max_length=LOGIN_ID_MAX_LENGTH,
        unique=True,
        validators=[UnicodeUsernameValidator(), validate_login_key_length],
        help_text="Letters, digits and @/./+/-/_ only; unique ignoring case and width (NFKC).",
    )
    login_key = models.CharField(
        max_length=LOGIN_ID_MAX_LENGTH,
        unique=True,
        editable=False,
        help_text="The login id NFKC-normalised and case folded; set on save, unique.",
    )
    email = models.EmailField(blank=True)
    display_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the admin site.")
    is_active = models.BooleanField(default=True, help_text="Unticking this deactivates the account.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "login_id"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        indexes = [models.Index(fields=["email"], name="accounts_user_email_idx")]

    def __str__(self) -> str:
        return self.login_id

    def save(self, *args, **kwargs) -> None:
        """Every path that writes a user (API, admin, createsuperuser, Google) stores one key."""
        self.login_id = self.normalize_username(self.login_id)
        self.login_key = login_key(self.login_id)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "login_id" in update_fields:
            kwargs["update_fields"] = {*update_fields, "login_key"}
        super().save(*args, **kwargs)
