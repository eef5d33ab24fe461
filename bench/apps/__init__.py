"""One module per variant, each exposing `app` with the same two routes (see `routes.py`)."""
