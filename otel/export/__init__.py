"""How metrics leave the process: the in-process `/metrics` endpoint and its rendering, the
exchange between worker processes, and the push readers (OTLP, remote write, console)."""
