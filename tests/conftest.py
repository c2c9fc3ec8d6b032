"""Shared fixtures. Each fixture family lives in its own plugin module."""

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.aws",
    "tests.fixtures.llm",
]
