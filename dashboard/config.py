"""What the jobs page is built with: plain values, so the page depends on no settings module."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DashboardConfig"]


@dataclass(frozen=True)
class DashboardConfig:
    """``database_url`` of the ledger it reads; the basic-auth login it requires (Flower's); how often the page
    reloads; the Redis where workers publish their metrics (None: /metrics exports the ledger's numbers only); the
    API it reads dataset names from (None: ids are shown alone); how long a chart that was slow to draw is shown again
    before it is drawn anew (0: on every request); the watermark lag past which a window schedule is flagged
    (0: never)."""

    database_url: str
    username: str
    password: str = field(repr=False)
    refresh_s: int = 5
    metrics_redis_url: str | None = None
    page_size: int = 100
    realm: str = "dsimport"
    api_base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    chart_ttl_s: float = 15.0
    watermark_lag_alert_s: float = 3600.0

    def __post_init__(self) -> None:
        if not self.username or ":" in self.username:
            raise ValueError("the login must be non-empty and hold no ':'")
        if not self.password:
            raise ValueError("the jobs page needs a password (it is never served without authentication)")
        if self.refresh_s < 1 or self.page_size < 1:
            raise ValueError("refresh_s and page_size must be at least 1")
        if self.chart_ttl_s < 0 or self.watermark_lag_alert_s < 0:
            raise ValueError("chart_ttl_s and watermark_lag_alert_s must not be negative")
