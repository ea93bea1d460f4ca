"""Rows to model instances and back, for the few statements of a reply's hot path written as SQL.

The ORM's compiling of a queryset can cost several times the statement
itself. Read rows go through the converters the ORM applies to a column
(SQLite returns text for a UUID or a datetime, for instance), so the
instance is the one the ORM would have built; inserted instances are
prepared as ``save()`` prepares them.
"""

from collections.abc import Sequence

from django.db import connection
from django.db.models import Field, Model


def table(model: type[Model]) -> str:
    """``model``'s table, quoted for the database."""
    return connection.ops.quote_name(model._meta.db_table)


def columns(fields: Sequence[Field], alias: str = "") -> str:
    """The columns of ``fields``, quoted, comma-separated, each prefixed with ``alias.`` if given."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + connection.ops.quote_name(field.column) for field in fields)


def fetch_one(sql: str, params: Sequence) -> tuple | None:
    """The first row that ``sql`` returns, or None."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def instance_from_row(model: type[Model], fields: list[Field], values) -> Model:
    """``model``'s instance, as loaded from the database, from the values of ``fields``' columns."""
    converted = []
    for field, value in zip(fields, values, strict=True):
        column = field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [field.attname for field in fields], converted)


def insert(instances: Sequence[Model]) -> None:
    """One ``INSERT`` for ``instances``, new rows of one model, each stored as ``save()`` would.

    Every field is prepared as ``save()`` prepares it (``pre_save`` first, so
    ``auto_now_add`` stamps them in list order). No signal is sent, as with
    ``bulk_create``. For models whose primary key is set before saving (a
    UUID): an auto-incremented key would have to be read back.
    """
    model = type(instances[0])
    if any(instance.pk is None for instance in instances):
        raise ValueError(f"insert() needs {model.__name__}'s primary keys set: use bulk_create().")
    fields = model._meta.concrete_fields
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = f"INSERT INTO {table(model)} ({columns(fields)}) VALUES {', '.join([row] * len(instances))}"
    values = [
        field.get_db_prep_save(field.pre_save(instance, add=True), connection)
        for instance in instances
        for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
    for instance in instances:
        instance._state.adding, instance._state.db = False, connection.alias
