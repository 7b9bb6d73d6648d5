"""Choosing the provider: platform settings, the organization's override, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection

from agents.providers import LLMError, Message, provider_config_for, provider_for
from agents.providers.anthropic_provider import AnthropicProvider
from agents.providers.openai_provider import OpenAIProvider
from tests.agents.recordings import FAKE_KEY, ReplayServer

ORG_KEY = "sk-test-org-not-real"


@pytest.fixture
def platform(settings):
    settings.LLM_PROVIDER = "offline"
    settings.LLM_MODEL = ""
    settings.ANTHROPIC_API_KEY = ""
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    settings.LLM_TIMEOUT_SECONDS = 12.0
    settings.LLM_MAX_RETRIES = 2
    return settings


def test_the_default_platform_provider_is_offline_and_needs_no_key(platform):
    provider = provider_for()

    assert provider.name == "offline"
    assert provider_config_for().source == "settings"


def test_settings_choose_anthropic_with_its_key_model_timeout_and_retries(platform):
    platform.LLM_PROVIDER = "anthropic"
    platform.LLM_MODEL = "claude-opus-4-7"
    platform.ANTHROPIC_API_KEY = FAKE_KEY

    provider = provider_for(purpose="architect")

    assert isinstance(provider, AnthropicProvider)
    assert provider.model == "claude-opus-4-7"
    assert provider.timeout == 12.0
    assert provider.max_retries == 2


def test_a_provider_without_its_key_fails_with_the_setting_to_fix(platform):
    platform.LLM_PROVIDER = "anthropic"

    with pytest.raises(LLMError) as caught:
        provider_for()

    assert str(caught.value) == "ANTHROPIC_API_KEY is not set; set it or choose LLM_PROVIDER=offline"
    assert caught.value.retryable is False


def test_openai_without_a_key_fails_unless_openai_base_url_points_at_a_compatible_server(platform):
    platform.LLM_PROVIDER = "openai"
    with pytest.raises(LLMError, match="OPENAI_API_KEY is not set; set it or choose LLM_PROVIDER=offline"):
        provider_for()

    platform.OPENAI_BASE_URL = "http://127.0.0.1:8000/v1"
    platform.LLM_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
    provider = provider_for()

    assert isinstance(provider, OpenAIProvider)
    assert provider.base_url == "http://127.0.0.1:8000/v1"
    assert provider.model == "meta-llama/Llama-3.1-8B-Instruct"


def test_the_organizations_override_and_its_encrypted_key_are_used_for_calls(platform, org):
    platform.LLM_PROVIDER = "anthropic"
    platform.LLM_MODEL = "claude-opus-4-7"
    platform.ANTHROPIC_API_KEY = FAKE_KEY
    org.llm_provider = "openai"
    org.llm_model = "qwen2.5-coder:7b"
    org.llm_api_key = ORG_KEY
    org.llm_base_url = "http://127.0.0.1:11434/v1"
    org.save()
    org.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute("SELECT llm_api_key FROM roles_organization WHERE id = %s", [org.id])
        assert ORG_KEY not in cursor.fetchone()[0]
    server = ReplayServer((200, "openai_text"))

    # No capability store: this test is about whose key and server are used, not about probing.
    provider = provider_for(organization=org, http_client=server.client(), capabilities=None)
    provider.complete(messages=[Message(role="user", content="hello")])

    assert provider_config_for(organization=org).source == "organization"
    request = server.requests[0]
    assert str(request.url) == "http://127.0.0.1:11434/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {ORG_KEY}"
    assert server.body()["model"] == "qwen2.5-coder:7b"


def test_an_organization_that_picks_a_provider_without_a_model_gets_that_providers_default(platform, org):
    platform.LLM_PROVIDER = "anthropic"
    platform.LLM_MODEL = "claude-opus-4-7"
    platform.OPENAI_API_KEY = FAKE_KEY
    org.llm_provider = "openai"

    provider = provider_for(organization=org)

    assert provider.name == "openai"
    assert provider.model == "gpt-4.1-mini"


def test_an_organization_model_alone_applies_to_the_platform_provider(platform, org):
    platform.LLM_PROVIDER = "anthropic"
    platform.ANTHROPIC_API_KEY = FAKE_KEY
    org.llm_model = "claude-haiku-4-5"

    config = provider_config_for(organization=org)

    assert (config.kind, config.model, config.source) == ("anthropic", "claude-haiku-4-5", "settings")


def test_an_organization_provider_without_any_key_says_where_to_add_one(platform, org):
    org.llm_provider = "anthropic"

    with pytest.raises(LLMError, match="the organization uses anthropic but has no LLM API key"):
        provider_for(organization=org)


def test_an_organization_may_choose_offline_even_when_the_platform_uses_a_vendor(platform, org):
    platform.LLM_PROVIDER = "openai"
    org.llm_provider = "offline"

    assert provider_for(organization=org).name == "offline"


def test_an_unknown_provider_kind_is_refused_with_the_choices(platform):
    platform.LLM_PROVIDER = "gemini"

    with pytest.raises(LLMError, match="LLM_PROVIDER is 'gemini'; expected one of anthropic, openai, offline"):
        provider_for()


def test_the_resolved_configuration_never_shows_the_key(platform):
    platform.LLM_PROVIDER = "openai"
    platform.OPENAI_API_KEY = FAKE_KEY

    config = provider_config_for()

    assert config.has_key
    assert FAKE_KEY not in repr(config)


def test_an_empty_purpose_is_refused(platform):
    with pytest.raises(ValueError, match="purpose must be a non-empty name"):
        provider_for(purpose="")


def test_choosing_a_provider_imports_no_vendor_sdk_until_one_is_needed():
    code = (
        "import django, sys; django.setup(); from agents.providers import provider_for; provider_for(); "
        "print('anthropic' in sys.modules, 'openai' in sys.modules)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "nectar.settings", "LLM_PROVIDER": "offline"}

    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)

    assert result.stdout.split() == ["False", "False"]
