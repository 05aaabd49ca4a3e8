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
``rows_update`` does the same for a queryset's ``update``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection, models
from django.db.models.sql import UpdateQuery

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

    def typed(self, params: tuple[Param, ...]) -> tuple[Any, ...]:
        """``params`` as the compiler typed them."""
        if not any(self.kinds):
            return params
        return tuple(k(p) if k else p for k, p in zip(self.kinds, params, strict=True))


_selects: dict[tuple[Callable[..., Any], str], _Select | None] = {}


def rows_select(
    build: Callable[..., models.QuerySet[Any]], *params: Param
) -> list[tuple[Any, ...]]:
    """The rows of the ``values_list`` queryset ``build(*params)``, compiled once per engine.

    ``build`` is a module-level function (its identity keys the statement) that makes the same
    query for any ``params``. The first call compiles what it builds, and compiles it again for
    stand-in values, one different value per parameter: when both statements are the same and
    each takes its values as given, in the order given (no field adapted one), the statement is
    kept. Otherwise every call runs the queryset through the ORM.
    """
    params = _plain(params)
    key = (build, connection.vendor)
    if key not in _selects:
        _selects[key] = _compiled(lambda *a: build(*a).query, params, columns=True)
    select = _selects[key]
    if select is None:
        return [tuple(row) for row in build(*params)]
    with connection.cursor() as cursor:
        cursor.execute(select.sql, select.typed(params))
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


Update = tuple[models.QuerySet[Any], dict[str, Any]]
_updates: dict[tuple[Callable[..., Any], str], _Select | None] = {}


def rows_update(build: Callable[..., Update], *params: Param) -> int:
    """``queryset.update(**values)`` for the ``(queryset, values)`` that ``build(*params)``
    makes, compiled once per engine as ``rows_select`` compiles; returns the rows changed.

    ``params`` must come in the statement's order (the values set, then the filter's, whose
    conditions Django sorts by name), or the statement is not kept.
    """
    params = _plain(params)
    key = (build, connection.vendor)
    if key not in _updates:
        _updates[key] = _compiled(lambda *a: _update_query(*build(*a)), params, columns=False)
    update = _updates[key]
    if update is None:
        queryset, values = build(*params)
        return int(queryset.update(**values))
    with connection.cursor() as cursor:
        cursor.execute(update.sql, update.typed(params))
        return int(cursor.rowcount)


def _update_query(queryset: models.QuerySet[Any], values: dict[str, Any]) -> Any:
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    return query


def _compiled(
    query_for: Callable[..., Any], params: tuple[Param, ...], *, columns: bool
) -> _Select | None:
    """The statement ``query_for(*params)`` compiles to, if it takes exactly ``params``."""
    stand_ins = tuple(_stand_in(p, n) for n, p in enumerate(params))
    compiled = []
    for values in (params, stand_ins):
        compiler = query_for(*values).get_compiler(connection=connection)
        sql, taken = compiler.as_sql()
        if len(taken) != len(values) or not all(
            type(v) in (int, str) and isinstance(t, type(v)) and t == v
            for t, v in zip(taken, values, strict=True)
        ):
            return None
        compiled.append((sql, taken, compiler))
    (sql, taken, compiler), (stand_in_sql, _, _) = compiled
    if sql != stand_in_sql:
        return None
    kinds = tuple(
        type(t) if type(t) is not type(p) else None for t, p in zip(taken, params, strict=True)
    )
    converters = []
    if columns:
        selected = [s[0] for s in compiler.select[: compiler.col_count]]
        converters = [(n, f, e) for n, (f, e) in compiler.get_converters(selected).items()]
    return _Select(sql=sql, kinds=kinds, converters=converters)


def _plain(params: tuple[Any, ...]) -> tuple[Any, ...]:
    """An enum member (a status, a choice) as the plain str or int it stands for."""
    if all(type(p) in (int, str) for p in params):
        return params
    return tuple(
        p
        if type(p) in (int, str) or isinstance(p, bool)
        else str(p)
        if isinstance(p, str)
        else int(p)
        if isinstance(p, int)
        else p
        for p in params
    )


def _stand_in(value: Param, position: int) -> Param:
    """A value of ``value``'s type unlike any other parameter's, to see where each one goes."""
    if isinstance(value, str):
        return f"{value}~{position}"
    return 1_000_003 + 7_919 * position


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
