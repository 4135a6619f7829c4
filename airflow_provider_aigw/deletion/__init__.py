"""Deletes that stay safe when the API does not apply a filter.

Cloudflare silently ignores filters it does not apply (live-verified for mis-encoded filters
and unknown parameters), and that DELETE applies ``filters`` at all was never verified live.
So nothing here trusts one filter alone:

* a delete first proves, by listing, which logs it will remove (a keyset walk, by id);
* every DELETE names its ids AND is confined to a tight ``created_at`` slice (first to last id
  of its batch) inside the window, with the caller's filters: if the API ignores the ``id``
  filter, only logs of that slice can go, and the slice was just listed;
* no DELETE's slice holds a log that must stay (a kept log of a manifest delete): batches are
  cut around them, and a deletable log sharing a kept log's millisecond is left and reported;
* the first DELETE is a small canary: 5 named ids between two unnamed logs of its slice, with a
  ``limit`` covering all 7. An API ignoring the ``id`` filter takes the whole slice in whatever
  order it deletes (oldest or newest first, or any other), so an unnamed log is gone. The slice
  is listed before (it must hold exactly those 7) and after it (and, with filters, also counted
  without them); unless exactly the named ids are gone the delete stops at once;
* on a 414 (URL too long) a batch is sent again in smaller parts before anything else; a
  delete that cannot go on stops, its error listing what was and was not deleted.

Residual risk: a log that turns up inside a batch's slice between the listing and that
batch's DELETE could be deleted if the API applied the ``id`` filter to the canary and then
stopped applying it.

The parts: :mod:`.confined` (the confined DELETE and its canary), :mod:`.listed` (delete what
filters and a window match), :mod:`.exported` (delete what an export manifest archived).
"""

from __future__ import annotations

from airflow_provider_aigw.deletion.confined import (
    CANARY_SIZE,
    MAX_DELETE_ID_CHARS,
    ConfinedDelete,
    Target,
    announce,
    listed_ids,
    sample,
)
from airflow_provider_aigw.deletion.exported import (
    delete_exported,
    delete_from_manifest,
    load_manifest,
    manifest_scope,
)
from airflow_provider_aigw.deletion.listed import UNFILTERED_DELETE, delete_listed, validate_delete_query

__all__ = [
    "CANARY_SIZE",
    "MAX_DELETE_ID_CHARS",
    "UNFILTERED_DELETE",
    "ConfinedDelete",
    "Target",
    "announce",
    "delete_exported",
    "delete_from_manifest",
    "delete_listed",
    "listed_ids",
    "load_manifest",
    "manifest_scope",
    "sample",
    "validate_delete_query",
]
