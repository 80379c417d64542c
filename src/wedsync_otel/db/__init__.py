"""Database advice from observed queries: the QueryAdvisor and what it reports."""

from __future__ import annotations

from wedsync_otel.db.advisor import AdvisorStats, QueryAdvisor, Recommendation

__all__ = ["AdvisorStats", "QueryAdvisor", "Recommendation"]
