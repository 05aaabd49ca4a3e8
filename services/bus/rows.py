"""The bus's hot statements, built once: the inbox row, the delivery's record and the event
itself, once per delivery each, and the reads a handler makes on every delivery; a service may
use them for its own hot rows.

Through the ORM, ``objects.create`` and ``bulk_create`` spend most of their time compiling the
statement, not running it (some 0.15 ms of CPU per insert here, against 0.02 ms for the insert
itself), and a delivery makes three of them. ``row_insert`` and ``row_upsert`` build each
model's statement once, from its fields, and do per row what ``create`` does: the model's
defaults, each field's ``pre_save`` (``auto_now_add``) and its ``get_db_prep_save``, so the row
stored is the one ``create`` would store (tests/test_rows.py holds them to that, on SQLite and
PostgreSQL). Both engines take ``INSERT ... ON CONFLICT ... DO UPDATE`` and ``RETURNING``.

No signal is sent: nothing listens for these models' saves.

``rows_select`` runs a ``values_list`` queryset as the ORM would, but compiles it only once per
engine: Django's own compiler writes the statement (its locking clause included) and names the
converters of each column, and each later call runs that statement with its own parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)
Param = int | str


def row_insert(row: M) -> M:
    """Insert ``row`` (an unsaved instance) as ``row.save()`` would, in one statement; a
    primary key the database assigns is read back into it."""
    sql, fields, returns = _insert(type(row), connection.vendor, (), (), ())
    with connection.cursor() as cursor:
        cursor.execute(sql, _values(row, fields))
        if returns:
            row.pk = cursor.fetchone()[0]
    _saved(row)
    return row


def row_upsert(
    row: M, *, unique: Sequence[str], update: Sequence[str], returning: Sequence[str] = ()
) -> tuple[object, ...] | None:
    """Insert ``row``, or, when a row with the same ``unique`` fields is there, set its
    ``update`` fields from this one: ``bulk_create(update_conflicts=True)`` for one row. With
    ``returning``, answers those fields' values as the stored row now has them."""
    sql, fields, _ = _insert(
        type(row), connection.vendor, tuple(unique), tuple(update), tuple(returning)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, _values(row, fields))
        stored = tuple(cursor.fetchone()) if returning else None
    _saved(row)
    return stored


def _values(row: models.Model, fields: list[models.Field]) -> list[object]:
    return [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields]


def _saved(row: models.Model) -> None:
    row._state.adding = False
    row._state.db = connection.alias


@functools.cache
def _insert(
    model: type[models.Model],
    vendor: str,
    unique: tuple[str, ...],
    update: tuple[str, ...],
    returning: tuple[str, ...],
) -> tuple[str, list[models.Field], bool]:
    """The statement, the fields it takes in order, and whether it returns the primary key."""
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key or not f.db_returning]
    returns = meta.pk is not None and meta.pk.db_returning and not unique
    quote = connection.ops.quote_name

    def column(name: str) -> str:
        return quote(meta.get_field(name).column)

    names = [quote(f.column) for f in fields]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(names)}) "
        f"VALUES ({', '.join(['%s'] * len(names))})"
    )
    if unique:
        changes = ", ".join(f"{column(f)} = excluded.{column(f)}" for f in update)
        sql += f" ON CONFLICT ({', '.join(map(column, unique))}) DO UPDATE SET {changes}"
    if returns:
        sql += f" RETURNING {quote(meta.pk.column)}"
    elif returning:
        sql += f" RETURNING {', '.join(map(column, returning))}"
    return sql, fields, returns


@dataclass(frozen=True)
class _Select:
    sql: str
    # The type the compiler gave each parameter (psycopg's Int8 for an integer on PostgreSQL),
    # or None where it kept the caller's.
    kinds: tuple[type | None, ...]
    # (column, the functions that turn what the driver gives into what the ORM gives, the column's
    # expression they take)
    converters: list[tuple[int, list[Callable[..., Any]], Any]]


_selects: dict[tuple[Callable[..., Any], str], _Select | None] = {}


def rows_select(
    build: Callable[..., models.QuerySet[Any]], *params: Param
) -> list[tuple[Any, ...]]:
    """The rows of the ``values_list`` queryset ``build(*params)``, compiled once per engine.

    ``build`` is a module-level function (its identity keys the statement) that makes the same
    query for any ``params``. The first call compiles what it builds; when the statement takes
    exactly ``params``, in that order and as given (no field adapted one), the statement is kept.
    Otherwise every call runs the queryset through the ORM. Parameters are told apart by value,
    so a builder should not take two of one type that a first call could pass equal.
    """
    key = (build, connection.vendor)
    if key not in _selects:
        _selects[key] = _select_compile(build(*params), params)
    select = _selects[key]
    if select is None:
        return [tuple(row) for row in build(*params)]
    if any(select.kinds):
        params = tuple(k(p) if k else p for k, p in zip(select.kinds, params, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(select.sql, params)
        rows = cursor.fetchall()
    if not select.converters:
        return [tuple(row) for row in rows]
    converted = []
    for row in map(list, rows):
        for position, functions, expression in select.converters:
            for function in functions:
                row[position] = function(row[position], expression, connection)
        converted.append(tuple(row))
    return converted


def _select_compile(queryset: models.QuerySet[Any], params: tuple[Param, ...]) -> _Select | None:
    compiler = queryset.query.get_compiler(connection=connection)
    sql, compiled = compiler.as_sql()
    plain = all(
        isinstance(c, type(p)) and c == p and type(p) in (int, str)
        for c, p in zip(compiled, params, strict=False)
    )
    if len(compiled) != len(params) or not plain:
        return None
    kinds = tuple(
        type(c) if type(c) is not type(p) else None for c, p in zip(compiled, params, strict=True)
    )
    columns = [selected[0] for selected in compiler.select[: compiler.col_count]]
    converters = [
        (position, functions, expression)
        for position, (functions, expression) in compiler.get_converters(columns).items()
    ]
    return _Select(sql=sql, kinds=kinds, converters=converters)


def row_by_pk(model: type[M], pk: Param) -> M | None:
    """``model.objects.filter(pk=pk).first()``, through a compiled select: the row as the ORM
    would build it (``from_db``), or None."""
    names, build = _by_pk(model)
    found = rows_select(build, pk)
    return model.from_db(connection.alias, names, found[0]) if found else None


@functools.cache
def _by_pk(model: type[M]) -> tuple[list[str], Callable[[Param], models.QuerySet[Any]]]:
    names = [f.attname for f in model._meta.concrete_fields]

    def build(pk: Param) -> models.QuerySet[Any]:
        return model._default_manager.filter(pk=pk).values_list(*names)

    return names, build
