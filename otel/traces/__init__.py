"""The request's server span and how spans leave: the tracer provider, the light server span,
and the OTLP span encoding its exporters send."""
