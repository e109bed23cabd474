"""The pytest side of the development stack: the embedded services come up before Django's
settings are read, and `--no-services` runs the tests marked pure with nothing started.

Loaded with `-p devstack.pytest_plugin` (pyproject.toml), so its hooks run before
pytest-django configures Django from the environment.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

# Where --no-services points Django: a port nothing listens on, so a test that is marked pure
# but touches PostgreSQL or Redis fails loudly instead of finding a server by chance.
NOWHERE = {
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nothing",
    "REDIS_URL": "redis://127.0.0.1:9/0",
    "SECRET_KEY": "tests-without-services",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-services",
        action="store_true",
        help="run only the tests marked pure; start no PostgreSQL or Redis",
    )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None]:
    if early_config.known_args_namespace.no_services:
        os.environ.update(NOWHERE)
    else:
        from devstack import services

        services.activate()
    return (yield)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
    if not config.getoption("no_services"):
        return
    impure = [item for item in items if item.get_closest_marker("pure") is None]
    if impure:
        config.hook.pytest_deselected(items=impure)
        items[:] = [item for item in items if item.get_closest_marker("pure") is not None]
