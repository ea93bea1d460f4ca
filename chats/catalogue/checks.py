"""``manage.py check_providers``: every deployment's provider reached as a request would reach it.

For each deployment, its provider's model list and a one-token completion of its upstream model,
timed. The default provider (a deployment with no provider) is the settings' (``LLM_PROVIDER``,
``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``LLM_TIMEOUT``); the offline ``echo`` provider is always
reachable. No retries: a check says how the upstream is now. The deployments are read first, then
all are checked at once, with no database connection held meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import openai
from django.conf import settings

from chats.catalogue.models import Deployment, Provider
from chats.catalogue.selectors import deployments_all
from chats.llm.openai_provider import ClientConfig

PING = [{"role": "user", "content": "ping"}]


@dataclass(frozen=True)
class Target:
    """Where one deployment's requests go."""

    model: str  # the catalogue model's id
    provider: str  # its name, or "default"
    kind: str
    base_url: str | None
    api_key: str
    timeout: float
    upstream_model: str


@dataclass(frozen=True)
class DeploymentCheck:
    target: Target
    reachable: bool
    seconds: float
    detail: str = ""


def deployment_target(deployment: Deployment) -> Target:
    """Where ``deployment`` is served: its provider, or the default provider the settings describe."""
    provider: Provider | None = deployment.provider
    if provider is None:
        return Target(
            model=deployment.model.public_id,
            provider="default",
            kind=settings.LLM_PROVIDER,
            base_url=settings.OPENAI_BASE_URL or None,
            api_key=settings.OPENAI_API_KEY,
            timeout=float(settings.LLM_TIMEOUT),
            upstream_model=deployment.upstream_name,
        )
    return Target(
        model=deployment.model.public_id,
        provider=provider.name,
        kind=provider.kind,
        base_url=provider.base_url or None,
        api_key=provider.api_key(),
        timeout=provider.timeout,
        upstream_model=deployment.upstream_name,
    )


def deployments_check() -> list[DeploymentCheck]:
    """Every deployment checked, in the order ``deployments_all`` lists them."""
    targets = [deployment_target(deployment) for deployment in deployments_all()]
    return asyncio.run(_check_all(targets))


async def _check_all(targets: list[Target]) -> list[DeploymentCheck]:
    return list(await asyncio.gather(*(target_check(target) for target in targets)))


async def target_check(target: Target) -> DeploymentCheck:
    """``target`` reached: its model list, then one completion token of its upstream model."""
    started = time.perf_counter()
    if target.kind == Provider.Kind.ECHO:
        return DeploymentCheck(target=target, reachable=True, seconds=0.0, detail="offline echo model")
    config = ClientConfig(
        api_key=target.api_key or "not-needed",
        base_url=target.base_url,
        timeout=target.timeout,
        max_retries=0,
    )
    client = config.build()
    try:
        listed = [model.id async for model in client.models.list()]
        await client.chat.completions.create(model=target.upstream_model, messages=PING, max_tokens=1)
    except openai.OpenAIError as exc:
        return DeploymentCheck(
            target=target, reachable=False, seconds=time.perf_counter() - started, detail=_reason(exc)
        )
    finally:
        await client.close()
    detail = "" if target.upstream_model in listed else "not in its model list"
    return DeploymentCheck(
        target=target, reachable=True, seconds=time.perf_counter() - started, detail=detail
    )


def _reason(exc: openai.OpenAIError) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    if isinstance(exc, openai.APITimeoutError):
        return "timed out"
    if isinstance(exc, openai.APIConnectionError):
        return f"could not connect ({exc.__cause__ or exc})"
    return f"{type(exc).__name__}: {exc}"
