"""`make doctor` (`python -m scripts.doctor`): checks the running stack, prints a fix per failure.

One row per check, with a fix hint under every failure; exits 1 when anything fails, 0 otherwise
(SKIP does not fail). The checks, in the order `cli.CHECKS` lists them:

- the documented host ports: free, or held by the service that belongs there (and which process:
  `sockets.py` reads that from /proc);
- the app: /health, and /metrics with the contract's series (`otel/metrics/contract.py`);
- Prometheus: /-/healthy and the state of every scrape target;
- every dashboard panel and variable query (grafana/provisioning/dashboards/*.json), with
  Grafana's variables substituted, run against Prometheus: does it return data?
- Grafana: /api/health, the provisioned datasource (uid `prometheus`) and Grafana's own health
  check of it.
"""
