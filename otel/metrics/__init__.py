"""What is measured and how it is named: the contract table, the Views, the request aggregator
and its producer, the Prometheus naming rule, and the Prometheus bridge (prometheus_client
metrics, the runtime series among them, on every export path)."""
