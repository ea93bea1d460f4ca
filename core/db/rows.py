"""Model instances from rows that a plain SQL statement returned.

For the few statements on the hot path of a reply written as SQL (the ORM's
compiling of a queryset can cost several times the statement): the row's
values go through the same converters the ORM applies to a column (SQLite
returns text for a UUID or a datetime, for instance), so the instance is the
one the ORM would have built.
"""

from django.db import connection
from django.db.models import Field, Model


def instance_from_row(model: type[Model], fields: list[Field], values) -> Model:
    """``model``'s instance, as loaded from the database, from the values of ``fields``' columns."""
    converted = []
    for field, value in zip(fields, values, strict=True):
        column = field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [field.attname for field in fields], converted)
