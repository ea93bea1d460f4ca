"""Personas and clients shared by every app's tests."""

import pytest
from django.core.cache import cache
from django.db import connections
from model_bakery import baker
from rest_framework.test import APIClient

from tests.helpers.clients import PASSWORD, bearer_client


def pytest_report_header(config):
    from django.conf import settings

    return f"database: {settings.DATABASES['default']['ENGINE']}"


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pools(django_db_setup, django_db_blocker):
    """Close PostgreSQL's connection pool before the test database is dropped.

    Threads (uvicorn's, the concurrency tests') hand their connections back to
    the pool, which keeps them open: the drop would find the database in use.
    """
    yield
    with django_db_blocker.unblock():
        for wrapper in connections.all():
            if getattr(wrapper, "pool", None) is not None:
                wrapper.close_pool()


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters and replay caches must not leak between tests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """PBKDF2's many rounds dominate the tests; the hasher itself is Django's to test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(db):
    def make(login_id: str | None = None, **fields):
        fields.setdefault("display_name", "")
        user = baker.prepare("accounts.User", login_id=login_id or baker.seq("user-").__next__(), **fields)
        user.set_password(PASSWORD)
        user.save()
        return user

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice", email="alice@example.com", display_name="Alice")


@pytest.fixture
def other_user(make_user):
    return make_user("bob", email="bob@example.com", display_name="Bob")


@pytest.fixture
def walletless_user(db):
    """Carol, a user stored without the ``post_save`` receiver (as a data load would): no wallet yet.

    A wallet cannot be deleted (its ledger protects it), so this is how a test
    gets a user whose wallet the services must create.
    """
    from accounts.models import User
    from wallets.models import Wallet

    (carol,) = User.objects.bulk_create(
        [User(login_id="carol", login_key="carol", email="carol@example.com")]
    )
    assert not Wallet.objects.filter(user=carol).exists()
    return carol


@pytest.fixture
def staff_user(make_user):
    return make_user("staff", is_staff=True, is_superuser=True)


@pytest.fixture
def support_user(make_user):
    """Staff in the Support group (``manage.py support_group``), not a superuser."""
    from accounts.roles import support_group_sync

    group, _ = support_group_sync()
    member = make_user("sam.support", is_staff=True, display_name="Sam")
    member.groups.add(group)
    return member


@pytest.fixture
def general_category(db):
    """The ``general`` category the data migrations create (its catalogue model ``general``, deployed
    on the default provider); transactional tests flush it, so restore it."""
    from chats.models import Category
    from tests.helpers.catalogue import category_make

    category = Category.objects.select_related("model").filter(slug="general").first()
    return category or category_make("general", name="General", system_prompt="Be brief.")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def auth_client(user):
    return bearer_client(user)


@pytest.fixture
def other_client(other_user):
    return bearer_client(other_user)


@pytest.fixture
def live_asgi_url(transactional_db):
    """The project's ASGI app under a real uvicorn on loopback: where disconnects really happen."""
    import socket
    import threading
    import time

    import uvicorn

    from config.asgi import application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(application, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(autouse=True)
def _catalogue_read_afresh():
    """Each test reads the catalogue it made: nothing cached by an earlier test's (rolled back)
    rows, nor by an UPDATE that, unlike a save, tells no cache (``chats.catalogue.cache``)."""
    from chats.catalogue.cache import catalogue_forget

    catalogue_forget()
