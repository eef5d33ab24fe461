"""The club's memo service."""
