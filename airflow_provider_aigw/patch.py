"""What a PATCH of a log changes: :class:`LogPatch` (feedback, score, metadata) and its request body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.validation import validate_choice, validate_feedback, validate_metadata, validate_score

#: The fields a PATCH can set.
PATCH_FIELDS = ("feedback", "score", "metadata")


class _Unset:
    """The type of :data:`UNSET`."""

    def __repr__(self) -> str:
        return "UNSET"


#: "Leave this field as it is": the default of PATCH fields, where ``None`` means "clear it".
UNSET: Final[Any] = _Unset()

_VALIDATORS = {"feedback": validate_feedback, "score": validate_score, "metadata": validate_metadata}


@dataclass(frozen=True)
class LogPatch:
    """What one PATCH sets, validated once (:meth:`of`): each field :data:`UNSET` (left as it is),
    ``None`` (cleared) or a value.

    Build it with :meth:`of`; the constructor takes the fields as they are, unchecked.

    :param feedback: a number from -1 (thumbs down) to 1 (thumbs up).
    :param score: a number from 0 to 100.
    :param metadata: a dict of at most 5 string, number or boolean values (replaces the log's).
    """

    feedback: Any = UNSET
    score: Any = UNSET
    # A dict does not hash: a patch hashes by its other fields.
    metadata: Any = field(default=UNSET, hash=False)

    @classmethod
    def of(cls, *, feedback: Any = UNSET, score: Any = UNSET, metadata: Any = UNSET, clear: Any = ()) -> LogPatch:
        """Validate what a PATCH sets, before any request.

        :param feedback: the new feedback; ``None`` clears it; :data:`UNSET` leaves it.
        :param score: the same for the score.
        :param metadata: the same for the metadata.
        :param clear: a field name or names to clear (as ``None`` does).
        :raises AIGatewayInputError: a value out of range, a field both given and cleared, or nothing to patch.
        """
        cleared = [clear] if isinstance(clear, str) else list(clear)
        for name in cleared:
            validate_choice(name, PATCH_FIELDS, param="clear")
        given = {name: v for name, v in zip(PATCH_FIELDS, (feedback, score, metadata), strict=True) if v is not UNSET}
        both = sorted(name for name, v in given.items() if v is not None and name in cleared)
        if both:
            raise AIGatewayInputError(f"{both} given both a value and in clear=")
        values = {name: None for name in cleared} | {
            name: None if v is None else _VALIDATORS[name](v, param=name) for name, v in given.items()
        }
        if not values:
            raise AIGatewayInputError("nothing to patch: give feedback, score, metadata or clear=")
        return cls(**values)

    def body(self) -> dict[str, Any]:
        """The JSON body of the PATCH: the fields set (``None`` for the cleared ones)."""
        fields = {"feedback": self.feedback, "score": self.score, "metadata": self.metadata}
        return {name: dict(v) if isinstance(v, Mapping) else v for name, v in fields.items() if v is not UNSET}
