"""A wrapper whose attributes, but for those it defines, are the wrapped object's."""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["Forwarding"]


class Forwarding:
    """Mixin: an attribute the class does not define is read from the object it holds in ``self.<_forwarded_to>``.

    A subclass sets ``_forwarded_to`` to that attribute's name. ``__getattr__`` runs only when normal lookup fails,
    so what the wrapper defines never comes here. While the held object is not set (a failed ``__init__``, a copy
    being built) asking for it raises ``AttributeError`` instead of recursing.
    """

    __slots__ = ()
    _forwarded_to: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(getattr(cls, "_forwarded_to", None), str):  # else every lookup would recurse
            raise TypeError(f"{cls.__qualname__} must name the attribute it forwards to in _forwarded_to")

    def __getattr__(self, name: str) -> Any:
        held = self._forwarded_to
        if name == held:
            raise AttributeError(name)
        return getattr(getattr(self, held), name)
