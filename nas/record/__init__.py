"""The run record: a search's settings as a typed, versioned record."""

from __future__ import annotations

from ._record import (
    RECORD_VERSION,
    DataRecord,
    RunRecord,
    RunRecordError,
    SupernetRecord,
    migrate_unversioned,
)

__all__ = ["RECORD_VERSION", "DataRecord", "RunRecord", "RunRecordError", "SupernetRecord", "migrate_unversioned"]
