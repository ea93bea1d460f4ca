"""Comparing model instances field by field: hand-written reads must build what the ORM builds."""


def fields_of(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}
