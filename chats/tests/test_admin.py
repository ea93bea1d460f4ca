import pytest
from model_bakery import baker

from chats.models import Category, ChatSession, Message
from tests.helpers.catalogue import catalogue_model_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_staff_edit_a_category_and_choose_its_model(admin_client):
    general = Category.objects.get(slug="general")
    llama = catalogue_model_make("llama3", prompt_price="0.25", completion_price="0.75")
    response = admin_client.post(
        f"/admin/chats/category/{general.pk}/change/",
        {
            "slug": "general",
            "name": "General",
            "description": "",
            "system_prompt": "Answer in French.",
            "model": str(llama.pk),
            "is_active": "on",
            "order": "0",
        },
    )
    assert response.status_code == 302, response.content
    general.refresh_from_db()
    assert (general.system_prompt, general.model.public_id, str(general.model.prompt_price)) == (
        "Answer in French.",
        "llama3",
        "0.2500",
    )
    listing = admin_client.get("/admin/chats/category/")
    assert b"0.2500" in listing.content and b"0.7500" in listing.content  # its model's prices


def test_a_category_needs_a_model(admin_client):
    response = admin_client.post("/admin/chats/category/add/", {"slug": "bad", "name": "Bad", "order": "0"})
    assert response.status_code == 200
    assert not Category.objects.filter(slug="bad").exists()


def test_sessions_searchable_by_login_id_with_messages_inline(admin_client, user, other_user):
    general = Category.objects.get(slug="general")
    mine = baker.make(ChatSession, user=user, category=general, title="alice's chat")
    baker.make(ChatSession, user=other_user, category=general, title="bob's chat")
    baker.make(Message, session=mine, role="user", content="What is the capital of Peru?")

    listing = admin_client.get("/admin/chats/chatsession/", {"q": "alice"})
    assert listing.status_code == 200
    assert b"alice&#x27;s chat" in listing.content
    assert b"bob&#x27;s chat" not in listing.content

    detail = admin_client.get(f"/admin/chats/chatsession/{mine.pk}/change/")
    assert detail.status_code == 200
    assert b"What is the capital of Peru?" in detail.content
    # Read-only inline: no form inputs for message content.
    assert b'name="messages-0-content"' not in detail.content


def test_anonymous_cannot_reach_the_admin(client):
    response = client.get("/admin/chats/chatsession/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_read_usage_records_filtered_by_status_and_cannot_change_them(
    admin_client, user, general_category
):
    from accounts.services import api_key_create
    from chats.models import UsageRecord

    api_key, _ = api_key_create(user=user, name="script")
    done = UsageRecord.objects.create(
        user=user, api_key=api_key, category=general_category, status="complete", cost=7, prompt_tokens=11
    )
    UsageRecord.objects.create(user=user, api_key=api_key, category=general_category, status="failed")

    page = admin_client.get("/admin/chats/usagerecord/?status=complete&q=script")

    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [done]
    assert admin_client.get("/admin/chats/usagerecord/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/chats/usagerecord/{done.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert UsageRecord.objects.count() == 2


def test_staff_see_and_filter_usage_records_by_the_deployment_that_served_them(admin_client, user):
    from chats.models import UsageRecord

    spare = UsageRecord.objects.create(user=user, status="complete", deployment="spare/large-2025", cost=3)
    UsageRecord.objects.create(user=user, status="complete", deployment="main/large-2025", cost=4)

    page = admin_client.get("/admin/chats/usagerecord/?deployment=spare/large-2025")

    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [spare]
    assert "spare/large-2025" in page.content.decode()
