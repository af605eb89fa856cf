"""Evidence objects that no row names, deleted once they are an hour old.

Objects are written before their rows (api/events.py: store_then_commit), and a failed write
deletes them again; a process killed in between cannot, so its objects stay behind with no
row (one SIGKILL under load left 34). An hour is far longer than any write takes, so an object
that old without a row will never get one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from itertools import islice
from typing import Iterator

from sqlmodel import Session, col, select

from api.evidence_store import EvidenceStore
from api.models import Evidence, utcnow

log = logging.getLogger("streetwatch.api")

ORPHAN_AGE = timedelta(hours=1)
SWEEP_INTERVAL_S = 3600.0  # listing a bucket is not free: once an hour across all processes
# Where the API writes evidence (events/, reports/, orders/…/check, orders/…); nothing else in
# the bucket is touched.
PREFIXES = ("events/", "reports/", "orders/")
BATCH = 500


def _old_keys(store: EvidenceStore, cutoff: datetime) -> Iterator[str]:
    for prefix in PREFIXES:
        for key, changed in store.listing(prefix):
            if changed < cutoff:
                yield key


def sweep_orphans(session: Session, store: EvidenceStore, now: datetime | None = None) -> int:
    """Delete objects older than ORPHAN_AGE that no evidence row names; returns how many."""
    cutoff = (now or utcnow()) - ORPHAN_AGE
    keys = _old_keys(store, cutoff)
    removed = 0
    while batch := list(islice(keys, BATCH)):
        named = set(session.exec(select(Evidence.object_key).where(col(Evidence.object_key).in_(batch))).all())
        session.rollback()  # a read only: hold nothing while deleting
        for key in batch:
            if key not in named:
                store.delete(key)
                removed += 1
    if removed:
        log.warning("deleted %d orphaned evidence object(s) older than %s", removed, ORPHAN_AGE)
    return removed
