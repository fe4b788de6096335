"""Helpers shared by the tests and the benchmarks: test data factories, tiny random models, a private PostgreSQL
cluster, a local Label Studio server, the real app in chromium, and the load test's clients. Nothing here is part
of the product (it is not installed); tests/ and bench/ import it from the repository root."""
