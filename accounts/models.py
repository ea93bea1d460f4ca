import hashlib
import secrets
import unicodedata
import uuid
from datetime import datetime

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


# --- Personal API keys ---------------------------------------------------------

API_KEY_SCHEME = "pk-"
API_KEY_PREFIX_LENGTH = 12  # "pk-" and nine characters of the secret: enough to tell keys apart


def api_key_secret_new() -> str:
    """A fresh secret: ``pk-`` and 32 random bytes, URL-safe base64 (46 characters)."""
    return API_KEY_SCHEME + secrets.token_urlsafe(32)


def api_key_digest(secret: str) -> str:
    """What is stored of a secret: its SHA-256, in hex.

    A plain hash (not a slow password hash) is right here: the secret holds 256 random
    bits, so it cannot be guessed from its digest, and every API request checks one.
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def live(self, *, now: datetime | None = None) -> "ApiKeyQuerySet":
        """Keys that still authenticate: not revoked and not expired."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiKey(models.Model):
    """A personal API key: the user's credential for ``/v1/``, stored as a digest only.

    Keys are revoked, never deleted: usage records and ledger entries name them.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=API_KEY_PREFIX_LENGTH, db_index=True, help_text="The secret's first characters."
    )
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret, in hex.")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Updated at most once a minute.")
    expires_at = models.DateTimeField(null=True, blank=True)
    monthly_cap = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Most credits this key may spend in a calendar month (UTC)."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    #: The models (ids, or category slugs) it may use on ``/v1/``; empty: every model.
    allowed_models = models.JSONField(
        default=list,
        db_default=[],  # a previous release's INSERT, during a rolling deploy, gets "every model"
        blank=True,
        help_text="Model ids or category slugs this key may use; empty: all.",
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        indexes = [models.Index(fields=["user", "-created_at"], name="accounts_apikey_user_created")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(monthly_cap__isnull=True) | models.Q(monthly_cap__gte=1),
                name="accounts_apikey_monthly_cap_positive",
            )
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    def is_live(self, *, now: datetime | None = None) -> bool:
        """Whether the key still authenticates (its user's ``is_active`` aside)."""
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
