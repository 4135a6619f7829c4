"""Every name and path of an archive, and reading them back.

Layout under the destination (hive-style, partitioned by ``created_at`` in UTC)::

    gateway=<gateway_id>/date=YYYY-MM-DD/[hour=HH/]part-<WINDOWTAG>-a<ATTEMPT>-00000.<ext>
    gateway=<gateway_id>/_manifests/<WINDOWTAG>.<format>.json
    gateway=<gateway_id>/_manifests/<WINDOWTAG>.<format>.lock     (while an export runs)

``WINDOWTAG`` is ``<start>-<end>`` in compact UTC (``20261126T000000Z-20261127T000000Z``),
followed by ``-f<hash>`` when filters are given. ``ATTEMPT`` is the id of the export attempt that
wrote the part (see :mod:`~airflow_provider_aigw.export.commit`). Earlier provider versions wrote
parts without ``-a<ATTEMPT>`` and one manifest ``<WINDOWTAG>.json`` per window; both are still
read back.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.query import normalize_filters
from airflow_provider_aigw.timestamps import format_compact, parse_compact, utc_datetime

#: The directory of a gateway's manifests and locks.
MANIFEST_DIR = "_manifests"
#: The file extension of each export format.
EXTENSIONS: dict[str, str] = {"jsonl": "jsonl", "jsonl.gz": "jsonl.gz", "parquet": "parquet"}

_TS = r"\d{8}T\d{6}(?:\.\d{6})?Z"
_TAG = rf"(?P<start>{_TS})-(?P<end>{_TS})(?P<filters>-f[0-9a-f]{{10}})?"
_FMT = "|".join(re.escape(f) for f in sorted(EXTENSIONS, key=len, reverse=True))
_MANIFEST_RE = re.compile(rf"^(?P<tag>{_TAG})(?:\.(?P<format>{_FMT}))?\.json$")
_EXT = "|".join(re.escape(e) for e in sorted(set(EXTENSIONS.values()), key=len, reverse=True))
#: Part names, old (no attempt) and new, and the hidden temp names of ``file://`` writes.
_PART_RE = re.compile(
    rf"^\.?part-(?P<tag>{_TAG})(?:-a(?P<attempt>[0-9a-f]{{12}}))?-\d{{5,}}\.(?P<ext>{_EXT})(?:\.tmp)?$"
)


# --- windows -------------------------------------------------------------------------------------


def filters_suffix(filters: list[dict[str, Any]] | None) -> str:
    """``-f<hash>`` for filters (their order and a scalar versus one-item ``value`` do not matter), ``""`` for none."""
    flt = normalize_filters(filters)
    if not flt:
        return ""
    # normalized filters: ``value`` is always a list, so a scalar and a one-item list hash alike
    canon = [json.dumps(f, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for f in flt]
    return "-f" + hashlib.sha256("\n".join(sorted(canon)).encode("utf-8")).hexdigest()[:10]


def window_tag(start: datetime, end: datetime, filters: list[dict[str, Any]] | None = None) -> str:
    """Deterministic tag of an export window, e.g. ``20261126T000000Z-20261127T000000Z[-f<hash>]``.

    The optional ``-f<hash>`` is :func:`filters_suffix`.
    """
    s = utc_datetime(start, param="start")
    e = utc_datetime(end, param="end")
    return f"{format_compact(s)}-{format_compact(e)}{filters_suffix(filters)}"


def new_attempt_id() -> str:
    """A fresh attempt id (12 hex digits), part of every part name the attempt writes."""
    return uuid.uuid4().hex[:12]


# --- paths (relative to the destination's root) --------------------------------------------------


def gateway_dir(gateway_id: str) -> str:
    """The first partition level: ``gateway=<gateway_id>``."""
    return f"gateway={gateway_id}"


def manifests_dir(gw_dir: str) -> str:
    """The directory of a gateway's manifests and locks."""
    return f"{gw_dir}/{MANIFEST_DIR}"


def manifest_rel(gw_dir: str, tag: str, fmt: str) -> str:
    """Relative path of the manifest of a window and format."""
    return f"{gw_dir}/{MANIFEST_DIR}/{tag}.{fmt}.json"


def lock_rel(gw_dir: str, tag: str, fmt: str) -> str:
    """Relative path of the lock object of a window and format."""
    return f"{gw_dir}/{MANIFEST_DIR}/{tag}.{fmt}.lock"


def date_dir(gw_dir: str, day: datetime) -> str:
    """The date partition of ``day`` (UTC)."""
    return f"{gw_dir}/date={day:%Y-%m-%d}"


def partition_dir(gw_dir: str, created: datetime, *, hourly: bool) -> str:
    """The partition of a log created at ``created`` (UTC): its date, and its hour when ``hourly``."""
    day = date_dir(gw_dir, created)
    return f"{day}/hour={created.hour:02d}" if hourly else day


def part_name(tag: str, attempt: str, index: int, fmt: str) -> str:
    """File name of the ``index``-th part of a partition written by ``attempt``."""
    return f"part-{tag}-a{attempt}-{index:05d}.{EXTENSIONS[fmt]}"


# --- reading names back --------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestName:
    """What a manifest's file name says: the window, its filters' suffix and the format.

    ``format`` is ``None`` for a manifest of the old layout (``<tag>.json``, any format).
    """

    tag: str
    start: datetime
    end: datetime
    filters_suffix: str
    format: str | None


@dataclass(frozen=True)
class PartName:
    """What a part file's name says (hidden ``file://`` temp names included)."""

    tag: str
    #: ``None`` for parts written before attempts had ids.
    attempt: str | None
    ext: str


def parse_manifest_name(name: str) -> ManifestName | None:
    """The :class:`ManifestName` of a file name, ``None`` when it is no manifest's."""
    m = _MANIFEST_RE.match(name)
    if m is None:
        return None
    return ManifestName(m["tag"], parse_compact(m["start"]), parse_compact(m["end"]), m["filters"] or "", m["format"])


def parse_part_name(name: str) -> PartName | None:
    """The :class:`PartName` of a file name, ``None`` when it is no part's."""
    m = _PART_RE.match(name)
    return None if m is None else PartName(m["tag"], m["attempt"], m["ext"])


def format_of(name: str) -> str:
    """The export format of a part file, from its name.

    :raises AIGatewayInputError: the name ends in no format's extension.
    """
    for fmt, ext in sorted(EXTENSIONS.items(), key=lambda item: len(item[1]), reverse=True):
        if name.endswith(f".{ext}"):
            return fmt
    raise AIGatewayInputError(f"not an export part file: {name!r}")
