"""docs/gitops.md is copied into Argo CD Applications and Flux repositories: its snippets must
parse, name the field manager the adapter writes under, and cover every field it owns."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from actuators.dialects import (
    HAMI_CORES,
    HAMI_GPU,
    HAMI_MEMORY,
    KAI_FRACTION,
    MIG_PROFILES,
    VOLCANO_CORES,
    VOLCANO_MEMORY,
    VOLCANO_NUMBER,
)
from actuators.kubernetes.api import FIELD_MANAGER
from actuators.kubernetes.cluster import WATERMARK_ANNOTATION
from actuators.kubernetes.objects import LAST_DECISION

DOC = Path(__file__).resolve().parents[2] / "docs" / "gitops.md"
SLICE_KEYS = [
    HAMI_GPU,
    HAMI_CORES,
    HAMI_MEMORY,
    VOLCANO_NUMBER,
    VOLCANO_CORES,
    VOLCANO_MEMORY,
    *(p.resource for p in MIG_PROFILES),
]


def snippets(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def documents() -> list[Any]:
    return [d for text in snippets("yaml") for d in yaml.safe_load_all(text)]


def pairs(node: Any) -> Iterator[tuple[str, Any]]:
    """Every key and value, through argocd-cm's settings, which are YAML in a string."""
    if isinstance(node, dict):
        for k, v in node.items():
            nested = str(k).startswith("resource.customizations.ignoreDifferences")
            value = yaml.safe_load(v) if nested else v
            yield str(k), value
            yield from pairs(value)
    elif isinstance(node, list):
        for item in node:
            yield from pairs(item)


def rules(key: str) -> list[Any]:
    return [v for d in documents() for k, v in pairs(d) if k == key]


def test_every_yaml_snippet_parses() -> None:
    found = documents()
    assert len(found) >= 4 and all(isinstance(d, dict) and d for d in found)


def test_the_argo_cd_rules_name_the_adapters_field_manager() -> None:
    managers = rules("managedFieldsManagers")
    assert managers and all(m == [FIELD_MANAGER] for m in managers)
    assert f"**`{FIELD_MANAGER}`**" in DOC.read_text()
    for d in documents():
        if d.get("kind") == "Application":
            assert "RespectIgnoreDifferences=true" in d["spec"]["syncPolicy"]["syncOptions"]


def test_the_jq_paths_reach_every_slice_key_and_every_owned_field() -> None:
    lists = rules("jqPathExpressions")
    assert lists
    for paths in lists:  # each list names the slice keys of every dialect
        prefixes = re.findall(r'startswith\("([^"]+)"\)', " ".join(paths))
        assert all(any(k.startswith(p) for p in prefixes) for k in SLICE_KEYS), paths
    everything = max(lists, key=len)  # the paths-only rule: all of sloscale's fields
    for field in (
        ".spec.replicas",
        ".spec.strategy.rollingUpdate",
        ".spec.template.spec.schedulerName",
        f'.spec.template.metadata.annotations["{KAI_FRACTION}"]',
        f'.metadata.annotations["{LAST_DECISION}"]',
        f'.metadata.annotations["{WATERMARK_ANNOTATION}"]',
    ):
        assert field in everything


def test_the_table_names_every_slice_key() -> None:
    text = DOC.read_text()
    assert all(f"`{k}`" in text for k in (HAMI_GPU, HAMI_CORES, HAMI_MEMORY))
    assert all(f"`{k}`" in text for k in (VOLCANO_NUMBER, VOLCANO_CORES, VOLCANO_MEMORY))
    assert "`nvidia.com/mig-<g>g.<mem>gb`" in text


def test_the_flux_handover_manager_keeps_what_it_takes() -> None:
    """Neither sloscale (its next apply would remove replicas) nor a kubectl* name (Flux
    removes those entries)."""
    (manager,) = re.findall(r"--field-manager=(\S+)", "\n".join(snippets("sh")))
    assert manager != FIELD_MANAGER and not manager.startswith("kubectl")
    (handover,) = [d for d in documents() if d.get("kind") == "Deployment"]
    assert set(handover["spec"]) == {"replicas", "template"}
    (container,) = handover["spec"]["template"]["spec"]["containers"]
    assert set(container) == {"name", "resources"}
