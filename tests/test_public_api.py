"""The public surface is explicit: everything in __all__ exists, errors share one root."""

from __future__ import annotations

import inspect
import subprocess
import sys

import dash_database
from dash_database import exceptions


def test_all_names_exist() -> None:
    missing = [name for name in dash_database.__all__ if not hasattr(dash_database, name)]

    assert [] == missing


def test_every_public_class_and_function_is_in_all() -> None:
    public = {
        name
        for name, value in vars(dash_database).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__.startswith("dash_database")
    }

    assert set() == public - set(dash_database.__all__)


def test_every_error_derives_from_the_root_and_is_exported() -> None:
    errors = [
        value
        for value in vars(exceptions).values()
        if inspect.isclass(value) and issubclass(value, Exception)
    ]

    assert all(issubclass(error, dash_database.DashDatabaseError) for error in errors)
    assert all(error.__name__ in dash_database.__all__ for error in errors)


def test_specific_errors_are_also_the_builtins_users_catch() -> None:
    assert issubclass(dash_database.InvalidIdTypeError, TypeError)
    assert issubclass(dash_database.SerializationError, TypeError)
    assert issubclass(dash_database.ValueTooLargeError, ValueError)
    assert issubclass(dash_database.InvalidArgumentError, ValueError)
    assert issubclass(dash_database.MissingKeyError, KeyError)


def test_version_comes_from_package_metadata() -> None:
    from importlib.metadata import version

    assert version("dash-database") == dash_database.__version__


def test_importing_the_package_imports_neither_dash_nor_optional_drivers() -> None:
    code = (
        "import sys, dash_database; "
        "print(sorted(m for m in ('dash', 'redis', 'sqlalchemy', 'psycopg') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert "[]" == out.stdout.strip()


def test_package_ships_type_information() -> None:
    from importlib.resources import files

    assert files("dash_database").joinpath("py.typed").is_file()
