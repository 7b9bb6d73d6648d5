"""Probed model capabilities kept in the ModelCapability table, and probing again from admin."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from agents.models import ModelCapability

from .capabilities import Capabilities, CapabilityKey


class ModelCapabilityStore:
    """The CapabilityStore of a running platform: one row per provider kind, base URL and model."""

    def load(self, key: CapabilityKey) -> Capabilities | None:
        row = ModelCapability.objects.filter(provider_kind=key.kind, base_url=key.base_url, model=key.model).first()
        if row is None or row.probed_at is None:
            return None
        return Capabilities(
            tool_calling=row.tool_calling,
            json_schema=row.json_schema,
            json_object=row.json_object,
            context_length=row.context_length,
            tokenizer=row.tokenizer_url,
            server=row.server,
            failures=dict(row.failures or {}),
            probed=True,
        )

    def save(
        self, key: CapabilityKey, capabilities: Capabilities, *, probed: bool = False, probe_tokens: int = 0
    ) -> None:
        values = {
            "tool_calling": capabilities.tool_calling,
            "json_schema": capabilities.json_schema,
            "json_object": capabilities.json_object,
            "context_length": capabilities.context_length,
            "tokenizer_url": capabilities.tokenizer[:500],
            "server": capabilities.server[:40],
            "failures": dict(capabilities.failures),
        }
        if probed:
            values["probed_at"] = timezone.now()
        row, _created = ModelCapability.objects.update_or_create(
            provider_kind=key.kind, base_url=key.base_url, model=key.model, defaults=values
        )
        if probe_tokens:
            ModelCapability.objects.filter(pk=row.pk).update(probe_tokens=F("probe_tokens") + probe_tokens)
