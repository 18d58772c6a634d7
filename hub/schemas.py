"""The base of every request schema: unknown members and NUL characters are refused.

Each package's request schemas (`hub.api.schemas`, `hub.auth.schemas`,
`hub.notify.schemas`) derive from `StrictSchema`.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, pre_load


def nul_paths(value: Any, path: str = "") -> list[str]:
    """Where `value` (parsed JSON, a query) holds a NUL character, in a key or a string:
    no database column takes one (PostgreSQL refuses it), so no input may carry one."""
    if isinstance(value, str):
        return [path or "(body)"] if "\x00" in value else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found += nul_paths(key, where) + nul_paths(item, where)
        return found
    if isinstance(value, list):
        return [p for n, item in enumerate(value) for p in nul_paths(item, f"{path}.{n}")]
    return []


class StrictSchema(Schema):
    """A request schema: unknown members, NUL characters and (in a query) a member given
    more than once are refused."""

    #: Members whose content is checked elsewhere (a batch's traders, item by item).
    nul_checked_elsewhere: tuple[str, ...] = ()

    class Meta:
        unknown = RAISE

    @pre_load
    def _no_nul(self, data: Any, **_kwargs: Any) -> Any:
        if hasattr(data, "getlist"):  # a query: each member once, not the first of many
            repeated = sorted({k for k in data if len(data.getlist(k)) > 1})
            if repeated:
                raise ValidationError({k: ["given more than once"] for k in repeated})
        if hasattr(data, "items"):
            checked = {k: v for k, v in data.items()
                       if k not in self.nul_checked_elsewhere}
            found = nul_paths(checked)
            if found:
                raise ValidationError({where: ["must not contain NUL characters"]
                                       for where in found})
        return data
