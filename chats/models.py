import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# The catalogue's models live in their package; imported here so that Django registers them.
from chats.catalogue.models import CatalogueModel, Deployment, Provider  # noqa: F401


class Category(models.Model):
    """What a session is about: its system prompt, and the catalogue model that answers it and sets
    its prices (``chats.catalogue``)."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    system_prompt = models.TextField(blank=True)
    model = models.ForeignKey(
        CatalogueModel,
        on_delete=models.PROTECT,
        related_name="categories",
        help_text="What answers in this category, and at what price.",
    )
    is_active = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["order", "slug"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class ReplyStatus(models.TextChoices):
    """Where a reply stands, a chat message's or a ``/v1/`` request's: pending while it streams."""

    PENDING = "pending"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    FAILED = "failed"


class PaidWhileStreaming(models.Model):
    """What a reply carries while it is paid for: the hold, and the lease of the worker running it.

    Renewed while it streams, the lease lets the stale sweep close only the
    replies whose worker is gone; both are cleared when the reply settles.
    """

    hold_id = models.UUIDField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True


class ChatSession(models.Model):
    """A conversation. ``updated_at`` moves on every activity, so it orders the list.

    The list shows pinned sessions first and hides archived ones unless asked
    (``session_rows_for_user``). Its search (``?q=``) reads two GIN indexes
    that only PostgreSQL has, so migration 0006 creates them there alone (they
    are not in ``Meta.indexes``, which every database would get):
    ``chats_session_search`` on ``session_search_vector()`` and
    ``chats_message_search`` on ``message_search_vector()``
    (``chats.conversations.selectors``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_sessions")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="sessions")
    title = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    # Kept by ``chats.replies.services.reply_begin``, in the transaction that stores the
    # messages (they are only ever deleted with their session): the list reads
    # it instead of counting every message of the user's sessions on each page.
    message_count = models.PositiveIntegerField(default=0, editable=False)
    pinned = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)

    class Meta:
        indexes = [
            # The list's filter and order: the user's (un)archived sessions, pinned first, then by activity.
            models.Index(
                fields=["user", "archived", "-pinned", "-updated_at", "id"], name="chats_session_user_list"
            ),
        ]

    def __str__(self) -> str:
        return self.title or str(self.id)


class Message(PaidWhileStreaming):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    Status = ReplyStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    # The message this one answers or follows, in the same session: a reply's parent is its
    # question, a question's the reply before it on its branch (none for the first). Siblings
    # (a regenerated reply, an edited question) share a parent; ``branch_path`` walks it.
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children", editable=False
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.PositiveIntegerField(default=0)
    #: Why a reply ended: ``stop``, ``length`` (at its ``max_tokens``, or all its wallet could pay
    #: for), ``stopped`` (by its user, or a shutdown), ``error``, or another reason its model gave;
    #: empty while it streams, and for questions.
    # db_default: the previous release's INSERTs (during a rolling deploy) leave it out.
    finish_reason = models.CharField(max_length=32, blank=True, default="", db_default="")
    #: The deployment that served it ("provider/upstream-model"), blank before routing existed.
    deployment = models.CharField(max_length=200, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["session", "created_at"], name="chats_message_session_time"),
            models.Index(fields=["created_at"], name="chats_message_pending", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"


class UsageRecord(PaidWhileStreaming):
    """What one reply used and cost, and how long it took; never its content. Usage reads these alone.

    A ``/v1/`` request's (``api_key`` set) is stored ``pending`` as it begins and settled with its
    hold. A chat reply's (no ``api_key``; its ``id`` is the assistant message's) is written as it
    ends, in the transaction that settles its hold, and outlives its session (``session`` is then
    null), as the ledger outlives the session: each ``charge`` entry has the record whose
    ``hold_id`` is its hold's (``audit_wallets`` checks it). ``model`` is the catalogue model that
    priced it (migration 0011 set it from the category for older records). ``category`` (and so
    ``model``) is null only for a reply
    charged before chat replies had records and whose session was deleted before then (migration
    0010 recovered it from the ledger: its cost, not its category or tokens).
    """

    Status = ReplyStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="usage_records")
    api_key = models.ForeignKey(
        "accounts.ApiKey", on_delete=models.PROTECT, null=True, blank=True, related_name="usage_records"
    )
    session = models.ForeignKey(
        ChatSession, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_records"
    )
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, null=True, blank=True, related_name="usage_records"
    )
    #: The catalogue model it was priced by: its category's, or the one a ``/v1/`` request named.
    model = models.ForeignKey(
        CatalogueModel, on_delete=models.PROTECT, null=True, blank=True, related_name="usage_records"
    )
    #: The deployment that served it ("provider/upstream-model"); blank if none did.
    deployment = models.CharField(max_length=200, blank=True, default="", db_default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.PositiveBigIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # When the reply began: a chat reply's record, written as it ends, is dated as its message.
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["user", "created_at"], name="chats_usage_user_time"),
            models.Index(fields=["api_key", "created_at"], name="chats_usage_key_time"),
            models.Index(fields=["created_at"], name="chats_usage_pending", condition=Q(status="pending")),
        ]
        constraints = [
            # One record per hold, found from its charge (``LedgerEntry.hold_id``) by this index.
            models.UniqueConstraint(fields=["hold_id"], name="chats_usage_one_per_hold"),
        ]

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.category_id} {self.status} {self.cost}"
