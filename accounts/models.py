from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, login_id: str) -> "User":
        # Login ids are unique case-insensitively, so they match that way too.
        return self.get(login_id__iexact=login_id)

    def create_user(self, login_id: str, password: str | None = None, **fields) -> "User":
        if not login_id:
            raise ValueError("A user needs a login id.")
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
        max_length=150,
        unique=True,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @/./+/-/_ only; unique ignoring case.",
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
        constraints = [
            models.UniqueConstraint(Lower("login_id"), name="accounts_user_login_id_ci_unique"),
        ]
        indexes = [models.Index(fields=["email"], name="accounts_user_email_idx")]

    def __str__(self) -> str:
        return self.login_id
