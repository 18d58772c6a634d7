"""The trader reference a partner asks about: an identifier, a name and address, or both."""

from __future__ import annotations

from typing import Any, NamedTuple

from hub.errors import InvalidInput


class DeclaredTrader(NamedTuple):
    """Who a declaration names: an identifier with its scheme and/or a name with an address.

    With both, both must point at the same operator, or the answer says they do not.
    Immutable (a named tuple: a batch builds ten thousand of them).
    """

    scheme: str | None = None
    value: str | None = None
    name: str | None = None
    street: str | None = None
    city: str | None = None
    postcode: str | None = None
    country: str | None = None

    @property
    def has_identifier(self) -> bool:
        return bool(self.scheme and self.value)

    @property
    def has_name(self) -> bool:
        return bool(self.name and self.name.strip())

    def check(self) -> None:
        """Raise `InvalidInput` naming the fields when the reference cannot be used."""
        fields: dict[str, str] = {}
        if bool(self.scheme) != bool(self.value):
            fields["scheme" if not self.scheme else "value"] = (
                "an identifier needs both its scheme and its value")
        if not self.has_identifier and not self.has_name:
            fields["reference"] = ("give an identifier (scheme and value), a name and "
                                   "address, or both")
        if self.country is not None and (len(self.country) != 2 or not self.country.isalpha()):
            fields["country"] = "an ISO 3166 alpha-2 country code"
        if fields:
            raise InvalidInput("the trader reference is incomplete", fields=fields)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in
                ("scheme", "value", "name", "street", "city", "postcode", "country")
                if getattr(self, name) is not None}
