"""`uvicorn tests.club.app:app`: the memo service with the recipe's module imported first, as
club code defining metrics at import time would be."""

from __future__ import annotations

import tests.club.recipe  # noqa: F401  (defines and increments my_metric_total)
from service.main import app

__all__ = ["app"]
