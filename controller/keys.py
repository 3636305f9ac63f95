"""Build keys and store variants of a host's models (the same key the device writes).

The key itself is builder/buildkey.py's, shared with the devices, so the controller and a
device cannot disagree on it.
"""

from __future__ import annotations

from typing import Any

from builder import __version__ as BUILDER_VERSION
from builder import buildkey
from builder.platform import detect

from .selection import EngineOptions, HostSelection


def engine_build_key(spec: dict[str, Any], platform_id: str, options: EngineOptions) -> str:
    """``spec``: a preflight catalog entry (its ``sha256`` is the graph's checksum)."""
    key: str = buildkey.build_key(platform_id, spec["sha256"], spec, options.as_dict(),
                                  BUILDER_VERSION)
    return key


def host_build_keys(selection: HostSelection, platform_id: str, catalog: dict[str, Any],
                    tensorrt: str | None = None) -> dict[str, tuple[str, str]]:
    """{model: (build_key, variant)} of every model the host selects (on ``tensorrt``)."""
    variant = selection.options.variant_for(detect.strongly_typed(tensorrt))
    return {model: (engine_build_key(catalog[model], platform_id, selection.options), variant)
            for model in selection.models}
