"""Parley settings: everything comes from the environment (see README)."""

import warnings
from datetime import timedelta
from pathlib import Path

from config.env import SettingError, env, read_dotenv, setting

BASE_DIR = Path(__file__).resolve().parent.parent
read_dotenv(BASE_DIR)


def _strict_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError("use true or false")


DEBUG = setting("DEBUG", _strict_bool, default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise SettingError("Set the SECRET_KEY environment variable (or DEBUG=true for local development).")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production-0123456789"

ALLOWED_HOSTS = setting("ALLOWED_HOSTS", env.list, default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = setting("CSRF_TRUSTED_ORIGINS", env.list, default=[])

INSTALLED_APPS = [
    "core.admin_site.ParleyAdminConfig",  # django.contrib.admin, its index in support's sections
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from /static/ rather than a CDN
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "core",
    "accounts",
    "wallets",
    "chats",
]

# Django's middleware, by the paths its deploy checks look for: no check is silenced
# (core/tests/test_checks.py). Under ASGI, core.asgi.ASGIHandler runs each of Django's as a
# subclass whose hooks stay on the event loop instead of two thread hops per middleware and
# request (core.middleware.ON_THE_LOOP).
MIDDLEWARE = [
    "core.middleware.RequestMetricsMiddleware",  # outermost: the status every layer settled on
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.AsyncWhiteNoiseMiddleware",  # /static/ (the admin's assets) with DEBUG off
    "corsheaders.middleware.CorsMiddleware",  # before CommonMiddleware, as django-cors-headers asks
    "core.middleware.APIErrorPagesMiddleware",  # JSON, not DEBUG's HTML pages, under /api/ and /auth/
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

# Cross-origin access for a single-page app on another origin: off unless origins are listed.
# Bearer tokens, not cookies, so credentials stay off.
CORS_ALLOWED_ORIGINS = setting("CORS_ALLOWED_ORIGINS", env.list, default=[])
CORS_URLS_REGEX = r"^/(api|auth)/.*$"
CORS_EXPOSE_HEADERS = ["Retry-After"]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# --- Database --------------------------------------------------------------
def _database_url(name: str, default: str) -> dict:
    """``env.db_url``, limited to the engines Parley runs on (and tests against)."""
    try:
        with warnings.catch_warnings():  # "Engine not recognized": said below, in one line
            warnings.simplefilter("ignore", UserWarning)
            config = env.db_url(name, default=default)
    except KeyError as exc:  # django-environ's answer to a URL without a scheme
        raise ValueError(f"unknown scheme {exc}") from None
    if config.get("ENGINE") not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
        raise ValueError("use postgres://user:password@host:port/name or sqlite:///path.")
    return config


DATABASES = {
    "default": setting("DATABASE_URL", _database_url, default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, but a missing database or a refused connection is said at once, rather
    # than as a pool timeout (core/db/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "core.db.postgresql"
    # A pool per process; with it Django requires CONN_MAX_AGE = 0.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": setting("DATABASE_POOL_MIN", env.int, default=2, minimum=0),
        "max_size": setting("DATABASE_POOL_MAX", env.int, default=10, minimum=1),
        "timeout": setting("DATABASE_POOL_TIMEOUT", env.float, default=10.0, minimum=0.1),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Waiting for the write lock beats failing with "database is locked"; IMMEDIATE takes the
    # write lock when a transaction starts, since SQLite refuses at once (without waiting) to
    # upgrade a read lock while another connection writes.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 20)
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    # The tests' database in a file, not in shared-cache memory: there a write that meets another
    # connection's lock fails at once ("database table is locked") instead of waiting as above,
    # and the tests run replies in server threads beside the test's own queries.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Cache and throttles ---------------------------------------------------
def _redis_url(name: str, default: str) -> str:
    url = env.str(name, default=default).strip()
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("use redis://host:port/db, rediss://... or unix://...")
    return url


REDIS_URL = setting("REDIS_URL", _redis_url, default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        # The default attributes name `username`, which this user model does not have.
        "OPTIONS": {"user_attributes": ("login_id", "display_name", "email")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

JWT_ACCESS_MINUTES = setting("JWT_ACCESS_MINUTES", env.int, default=15, minimum=1)
JWT_REFRESH_DAYS = setting("JWT_REFRESH_DAYS", env.int, default=14, minimum=1)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=JWT_ACCESS_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=JWT_REFRESH_DAYS),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

# Live (not revoked, not expired) personal API keys a user may hold at once.
API_KEYS_PER_USER = setting("API_KEYS_PER_USER", env.int, default=20, minimum=1)

GOOGLE_CLIENT_ID = setting("GOOGLE_CLIENT_ID", env.list, default=[])
# accounts.google verifies ID tokens against every id in GOOGLE_CLIENT_ID (web, Android, iOS
# clients). allauth itself wants exactly one visible app per provider (SocialAccount.__str__ in the
# admin looks it up), so the ids after the first are declared "hidden".
SOCIALACCOUNT_PROVIDERS = {
    "google": {
        "APPS": [
            {"client_id": client_id, "secret": "", "key": "", "settings": {"hidden": index > 0}}
            for index, client_id in enumerate(GOOGLE_CLIENT_ID)
        ],
        "VERIFIED_EMAIL": True,
    }
}
ACCOUNT_USER_MODEL_USERNAME_FIELD = "login_id"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*"]


def _throttle_rate(name: str, default: str) -> str:
    """A DRF rate such as ``10/min``, checked now rather than on the first request."""
    rate = env.str(name, default=default).strip()
    count, _, period = rate.partition("/")
    if not count.isdigit() or period[:1] not in {"s", "m", "h", "d"}:
        raise ValueError("use a number per s, min, hour or day, such as 10/min")
    return rate


AUTH_THROTTLE_RATE = setting("AUTH_THROTTLE_RATE", _throttle_rate, default="10/min")
# Messages sent per user, on the streamed message endpoint (and later /v1/), counted in the cache.
MESSAGE_THROTTLE_RATE = setting("MESSAGE_THROTTLE_RATE", _throttle_rate, default="30/min")
# Redemption code attempts (POST /api/wallet/redeem/), per user and per client address.
REDEEM_THROTTLE_RATE = setting("REDEEM_THROTTLE_RATE", _throttle_rate, default="10/min")
# How many proxies (load balancers) append to X-Forwarded-For in front of the app. With 0 the
# header is ignored, so a client cannot pick its own address to dodge the per-IP rate limits.
NUM_PROXIES = setting("NUM_PROXIES", env.int, default=0, minimum=0)

# --- REST framework --------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["core.responses.CompactJSONRenderer"],  # never indented
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    # OPTIONS lists the fields a client sends (the views' input serializers), not the answer's.
    "DEFAULT_METADATA_CLASS": "core.metadata.InputMetadata",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.CursorPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_RATES": {"auth_ip": AUTH_THROTTLE_RATE, "auth_login_id": AUTH_THROTTLE_RATE},
    "NUM_PROXIES": NUM_PROXIES,
    "EXCEPTION_HANDLER": "core.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
# Parley's version, said in one place: the OpenAPI schema's and the index's at /.
VERSION = "1.0.0"
SPECTACULAR_SETTINGS = {
    "TITLE": "Parley API",
    "DESCRIPTION": "Chat with an LLM, paid for from a credit wallet.",
    "VERSION": VERSION,
    # Every route answers with and without its trailing slash; the schema names it once.
    "PREPROCESSING_HOOKS": ["core.openapi.canonical_endpoints"],
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # core.converters.UUIDAnyCaseConverter: still a UUID to clients.
    "PATH_CONVERTER_OVERRIDES": {"uuid_any_case": {"type": "string", "format": "uuid"}},
    # /api/docs/ loads Swagger UI from this project's static files (a pinned copy in
    # drf-spectacular-sidecar), so it works offline and cannot change under us.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Nor does it send the schema to swagger.io's online validator for a badge.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- Request limits --------------------------------------------------------
# Images and audio come inline (base64) in /v1/ requests: room for a few of them.
DATA_UPLOAD_MAX_MEMORY_SIZE = setting("MAX_REQUEST_BYTES", env.int, default=8 * 1024 * 1024, minimum=1024)

# --- Wallet ----------------------------------------------------------------
INITIAL_WALLET_BALANCE = setting("INITIAL_WALLET_BALANCE", env.int, default=100, minimum=0)
STALE_HOLD_MINUTES = setting("STALE_HOLD_MINUTES", env.int, default=15, minimum=1)
# Spending caps of a wallet that sets none of its own, in credits per UTC day / month; empty: none.
DEFAULT_DAILY_SPEND_CAP = setting("DEFAULT_DAILY_SPEND_CAP", env.int, default=None, minimum=1)
DEFAULT_MONTHLY_SPEND_CAP = setting("DEFAULT_MONTHLY_SPEND_CAP", env.int, default=None, minimum=1)
# A streaming reply renews its lease every third of this; the stale sweep leaves it alone until
# the lease has run out, so only replies whose process died are closed.
REPLY_LEASE_SECONDS = setting("REPLY_LEASE_SECONDS", env.int, default=60, minimum=1)
# A worker running replies says it is alive in Redis this often; three missed beats and readers
# resuming its replies elsewhere learn that it died (chats.replies.liveness).
WORKER_HEARTBEAT_SECONDS = setting("WORKER_HEARTBEAT_SECONDS", env.float, default=2.0, minimum=0.1)
# A reply's events stay readable (to resume) this long after it ends.
REPLY_EVENTS_TTL = setting("REPLY_EVENTS_TTL", env.int, default=600, minimum=1)
# Replies one user may run at once, counted across workers (Redis) or in the process.
MAX_CONCURRENT_REPLIES = setting("MAX_CONCURRENT_REPLIES", env.int, default=3, minimum=1)
# On SIGTERM, how long running replies may go on before they are stopped and settled.
REPLY_SHUTDOWN_GRACE = setting("REPLY_SHUTDOWN_GRACE", env.float, default=30.0, minimum=0)

# GET /metrics (Prometheus) is off unless this is set; then it takes it as a bearer token.
METRICS_TOKEN = setting("METRICS_TOKEN", env.str, default="")

# --- LLM -------------------------------------------------------------------
# How long a worker keeps the catalogue (models, prices, deployments) it read; edits made through
# another worker reach it within this (chats.catalogue.cache). 0: read it for every request.
CATALOGUE_CACHE_SECONDS = setting("CATALOGUE_CACHE_SECONDS", env.float, default=5.0, minimum=0)
# A deployment failing this many times in a row is skipped for COOLDOWN_SECONDS (or its
# upstream's Retry-After), by every worker when Redis is set (chats.llm.cooldown).
COOLDOWN_FAILURES = setting("COOLDOWN_FAILURES", env.int, default=3, minimum=1)
COOLDOWN_SECONDS = setting("COOLDOWN_SECONDS", env.float, default=30.0, minimum=0.1)
LLM_PROVIDER = setting("LLM_PROVIDER", env.str, default="echo", choices={"echo", "openai"})
OPENAI_API_KEY = setting("OPENAI_API_KEY", env.str, default="")
OPENAI_BASE_URL = setting("OPENAI_BASE_URL", env.str, default="") or None
LLM_MODEL = setting("LLM_MODEL", env.str, default="gpt-4o-mini")
LLM_TIMEOUT = setting("LLM_TIMEOUT", env.float, default=60.0, minimum=0.1)
LLM_MAX_TOKENS = setting("LLM_MAX_TOKENS", env.int, default=1024, minimum=1)
LLM_MAX_RETRIES = setting("LLM_MAX_RETRIES", env.int, default=2, minimum=0)
LLM_CONTEXT_TOKENS = setting("LLM_CONTEXT_TOKENS", env.int, default=4096, minimum=256)
MESSAGE_MAX_CHARS = setting("MESSAGE_MAX_CHARS", env.int, default=8000, minimum=1)
# The fewest tokens a reply the wallet can only partly pay for is bounded to; below, it is refused.
MIN_REPLY_TOKENS = setting("MIN_REPLY_TOKENS", env.int, default=16, minimum=1)
# The most choices (`n`) one /v1/ request may ask for: the hold covers all of them.
V1_MAX_N = setting("V1_MAX_N", env.int, default=4, minimum=1)
# The prompt tokens reserved for each image, audio or file part (its bytes are not counted).
MEDIA_PART_TOKENS = setting("MEDIA_PART_TOKENS", env.int, default=3000, minimum=0)
# The offline echo provider's pause before each word, so that streaming can be seen (`make run`'s
# .env sets 30); 0 sends the whole reply at once, as the tests want.
ECHO_TOKEN_DELAY_MS = setting("ECHO_TOKEN_DELAY_MS", env.int, default=0, minimum=0)
if LLM_PROVIDER == "openai" and not OPENAI_BASE_URL and not OPENAI_API_KEY:
    raise SettingError("Set OPENAI_API_KEY (or OPENAI_BASE_URL) when LLM_PROVIDER=openai.")

# --- I18N, static ----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves what `collectstatic` gathered, compressed: the admin's assets and Swagger UI's
# (/api/docs/). Not the manifest (hashed names) variant: with a manifest every page using
# {% static %} fails until collectstatic has run, tests included.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security (effective with DEBUG off) -----------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = setting("SECURE_SSL_REDIRECT", _strict_bool, default=False)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = setting("SECURE_HSTS_SECONDS", env.int, default=0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# With HSTS on, the header also says "preload" (check --deploy W021); set false before HSTS is
# turned on if the domain must never be submitted to the browsers' preload list.
SECURE_HSTS_PRELOAD = setting("SECURE_HSTS_PRELOAD", _strict_bool, default=SECURE_HSTS_SECONDS > 0)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOG_LEVEL = setting(
    "LOG_LEVEL",
    lambda name, default: env.str(name, default=default).strip().upper(),
    default="INFO",
    choices={"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"},
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
