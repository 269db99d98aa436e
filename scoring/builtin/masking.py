"""Built-in name masking: persons as 张*明, organisations by name."""

from __future__ import annotations

from ..hookspecs import hookimpl


def mask_person(name: str) -> str:
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


@hookimpl(trylast=True)
def mask_name(name: str, kind: str) -> str:
    return mask_person(name) if kind == "person" else name
