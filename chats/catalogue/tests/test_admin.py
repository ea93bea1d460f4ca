"""The catalogue in the admin: providers (never their keys), models with deployments inline."""

import pytest

from chats.catalogue.models import CatalogueModel, Deployment, Provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_a_provider_shows_its_key_variable_and_whether_it_is_set_never_the_key(admin_client, monkeypatch):
    monkeypatch.setenv("MAIN_KEY", "sk-secret-value-123")
    Provider.objects.create(name="main", base_url="https://llm.example/v1", api_key_env="MAIN_KEY")
    Provider.objects.create(name="spare", base_url="http://vllm:8000/v1", api_key_env="SPARE_KEY_UNSET")

    listing = admin_client.get("/admin/chats/provider/")
    detail = admin_client.get(f"/admin/chats/provider/{Provider.objects.get(name='main').pk}/change/")

    for page in (listing, detail):
        assert page.status_code == 200
        assert b"MAIN_KEY" in page.content
        assert b"sk-secret-value-123" not in page.content
    assert listing.content.count(b'alt="True"') == 3  # main's key is set, and both are active
    assert b'alt="False"' in listing.content  # spare's is not


def test_staff_add_a_provider_and_a_model_with_its_deployments(admin_client):
    response = admin_client.post(
        "/admin/chats/provider/add/",
        {
            "name": "vllm",
            "kind": "openai",
            "base_url": "http://vllm:8000/v1",
            "api_key_env": "",
            "timeout": "30",
            "retries": "1",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content
    vllm = Provider.objects.get(name="vllm")

    response = admin_client.post(
        "/admin/chats/cataloguemodel/add/",
        {
            "public_id": "open-large",
            "name": "Open large",
            "is_active": "on",
            "prompt_price": "0.1",
            "completion_price": "0.3",
            "supports_tools": "on",
            "drop_params": '["logprobs"]',
            "deployments-TOTAL_FORMS": "2",
            "deployments-INITIAL_FORMS": "0",
            "deployments-0-provider": str(vllm.pk),
            "deployments-0-upstream_model": "meta-llama/Llama-3.1-70B",
            "deployments-0-priority": "1",
            "deployments-0-weight": "1",
            "deployments-1-provider": "",
            "deployments-1-upstream_model": "",
            "deployments-1-priority": "2",
            "deployments-1-weight": "1",
        },
    )

    assert response.status_code == 302, response.content
    model = CatalogueModel.objects.get(public_id="open-large")
    assert (model.supports_tools, model.supports_images, model.drop_params) == (True, False, ["logprobs"])
    assert [(d.provider_id, d.upstream_model, d.priority) for d in model.deployments.all()] == [
        (vllm.pk, "meta-llama/Llama-3.1-70B", 1),
        (None, "", 2),
    ]
    listing = admin_client.get("/admin/chats/cataloguemodel/")
    assert b"open-large" in listing.content and b"0.1000" in listing.content
    assert str(Deployment.objects.get(provider=None, model=model)) == "gpt-4o-mini on default provider"


def test_a_bad_model_is_refused(admin_client):
    response = admin_client.post(
        "/admin/chats/cataloguemodel/add/",
        {"public_id": "bad id", "name": "Bad", "prompt_price": "-1", "completion_price": "1",
         "drop_params": '"logprobs"', "deployments-TOTAL_FORMS": "0", "deployments-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 200
    assert not CatalogueModel.objects.filter(name="Bad").exists()
    assert b"Letters, digits" in response.content


def test_the_catalogue_sits_in_the_chats_section_after_categories(admin_client):
    index = admin_client.get("/admin/")
    chats = next(section for section in index.context["app_list"] if section["app_label"] == "chats")
    assert [model["object_name"] for model in chats["models"]] == [
        "Category",
        "CatalogueModel",
        "Provider",
        "ChatSession",
        "UsageRecord",
    ]


def test_support_staff_see_no_provider_or_model(client, support_user):
    client.force_login(support_user)
    assert client.get("/admin/chats/provider/").status_code == 403
    assert client.get("/admin/chats/cataloguemodel/").status_code == 403
