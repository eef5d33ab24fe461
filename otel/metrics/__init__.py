"""What is measured and how it is named: the contract table, the Views, the request aggregator
and its producer, the Prometheus naming rule, and the runtime series."""
