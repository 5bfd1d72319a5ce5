"""JSON Schema (draft 2020-12) for DRF serializer fields and Django model fields.

Our own mapping, not DRF's OpenAPI generator: MCP tools want plain JSON Schema, one document per
tool, with read-only and hidden fields left out of the input and write-only fields left out of
the output. Two modes:

- ``"input"``: what a client may send. Carries the constraints DRF enforces (lengths, bounds,
  choices, patterns), ``required`` and defaults.
- ``"output"``: what the serializer returns. Types, formats and nullability only, because every
  result is checked against it by clients and stored rows need not satisfy today's validators.

A custom serializer field can describe itself by defining ``mcp_json_schema`` (a dict, or a
callable taking the mode and returning one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Literal

from django.core.exceptions import FieldDoesNotExist
from django.core.validators import RegexValidator
from django.db import models
from rest_framework import fields as drf_fields
from rest_framework import relations, serializers
from rest_framework.settings import api_settings
from rest_framework.utils.encoders import JSONEncoder

from ..protocol.errors import echo

Mode = Literal["input", "output"]

# What DRF's DecimalField accepts as a string.
DECIMAL_PATTERN = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
SLUG_PATTERN = r"^[-a-zA-Z0-9_]+$"


# -- helpers -------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """Plain JSON values from what DRF representations contain (Decimal, dates, UUIDs...)."""
    return json.loads(json.dumps(value, cls=JSONEncoder, allow_nan=False))


def _number(value: Any) -> int | float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return float(value)


def _bounds(schema: dict[str, Any], min_value: Any, max_value: Any) -> None:
    # Bounds given as callables or non-numbers (dates, durations) are left to the server.
    for key, value in (("minimum", min_value), ("maximum", max_value)):
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            schema[key] = _number(value)


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` widened to accept ``null`` as well."""
    out = dict(schema)
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    return out


def _json_type(values: Iterable[Any]) -> str | None:
    """The one JSON type shared by all ``values`` (enum members), if there is one."""
    kinds = set()
    for value in values:
        if isinstance(value, bool):
            kinds.add("boolean")
        elif isinstance(value, int):
            kinds.add("integer")
        elif isinstance(value, float):
            kinds.add("number")
        elif isinstance(value, str):
            kinds.add("string")
        else:
            return None
    if kinds == {"integer", "number"}:
        return "number"
    return kinds.pop() if len(kinds) == 1 else None


def _choice_schema(choices: dict[Any, Any], *, allow_blank: bool, mode: Mode) -> dict[str, Any]:
    keys = [jsonable(key) for key in choices]
    schema: dict[str, Any] = {}
    kind = _json_type([*keys, ""] if allow_blank else keys)
    if kind:
        schema["type"] = kind
    if mode == "input":
        schema["enum"] = [*keys, ""] if allow_blank and "" not in keys else keys
    return schema


def _choice_labels(choices: dict[Any, Any]) -> str:
    """'Choices: a (A label), ...' when labels say more than the keys, else ''."""
    pairs = [(str(key), str(label)) for key, label in choices.items()]
    if all(key == label for key, label in pairs):
        return ""
    return "Choices: " + ", ".join(f"{key} ({label})" for key, label in pairs) + "."


# -- Django model fields -------------------------------------------------------------------
def model_field_schema(field: Any) -> dict[str, Any]:
    """The JSON value type of a Django model field (for filters and primary keys).

    Relations map to the type of the key they point at. Nullability is left to the caller.
    """
    if getattr(field, "is_relation", False):
        target = getattr(field, "target_field", None)
        if target is not None and target is not field:
            return model_field_schema(target)
        related = getattr(field, "related_model", None)
        if related is not None:
            return model_field_schema(related._meta.pk)
        return {}
    choices = getattr(field, "flatchoices", None)
    if choices:
        values = [jsonable(key) for key, _ in choices]
        schema: dict[str, Any] = {"enum": values}
        kind = _json_type(values)
        if kind:
            schema["type"] = kind
        return schema
    if isinstance(field, models.BooleanField):
        return {"type": "boolean"}
    if isinstance(field, models.IntegerField | models.AutoField):
        return {"type": "integer"}
    if isinstance(field, models.FloatField):
        return {"type": "number"}
    if isinstance(field, models.DecimalField):
        return {"type": ["number", "string"], "pattern": DECIMAL_PATTERN}
    if isinstance(field, models.DateTimeField):  # before DateField: a subclass of it
        return {"type": "string", "format": "date-time"}
    if isinstance(field, models.DateField):
        return {"type": "string", "format": "date"}
    if isinstance(field, models.TimeField):
        return {"type": "string", "format": "time"}
    if isinstance(field, models.DurationField):
        return {"type": "string", "format": "duration"}
    if isinstance(field, models.UUIDField):
        return {"type": "string", "format": "uuid"}
    if isinstance(field, models.EmailField):
        return {"type": "string", "format": "email"}
    if isinstance(field, models.URLField):
        return {"type": "string", "format": "uri"}
    if isinstance(field, models.JSONField):
        return {}
    return {"type": "string"}


def _related_model(field: relations.RelatedField) -> Any:
    """The model a relation points at: from its queryset, else from the parent serializer's
    model (read-only relations built by ModelSerializer have no queryset)."""
    queryset = getattr(field, "queryset", None)
    if queryset is not None:
        return queryset.model
    owner = field.parent
    if isinstance(owner, relations.ManyRelatedField):
        owner_field: Any = owner
        owner = owner.parent
    else:
        owner_field = field
    model_field = _model_field_of(owner_field, owner)
    return getattr(model_field, "related_model", None) if model_field is not None else None


def _model_field_of(field: Any, owner: Any) -> Any:
    """The Django model field behind a serializer field, when the serializer is a
    ModelSerializer and the source is a plain attribute of its model."""
    meta = getattr(owner, "Meta", None)
    model = getattr(meta, "model", None)
    source = getattr(field, "source", None)
    if model is None or not isinstance(source, str) or not source or "." in source or source == "*":
        return None
    try:
        return model._meta.get_field(source)
    except FieldDoesNotExist:
        return None


def _relation_schema(field: relations.RelatedField, mode: Mode) -> dict[str, Any]:
    if isinstance(field, relations.HyperlinkedRelatedField):
        return {"type": "string", "format": "uri"}
    if isinstance(field, relations.PrimaryKeyRelatedField):
        if field.pk_field is not None:
            return _base_schema(field.pk_field, mode)
        model = _related_model(field)
        return model_field_schema(model._meta.pk) if model is not None else {"type": ["integer", "string"]}
    if isinstance(field, relations.SlugRelatedField):
        model = _related_model(field)
        if model is not None:
            try:
                return model_field_schema(model._meta.get_field(field.slug_field))
            except FieldDoesNotExist:
                pass
        return {"type": "string"}
    return {"type": "string"}  # StringRelatedField and other read-only relations


# -- DRF serializer fields -----------------------------------------------------------------
def _string_schema(field: drf_fields.CharField, mode: Mode) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if isinstance(field, drf_fields.EmailField):
        schema["format"] = "email"
    elif isinstance(field, drf_fields.URLField):
        schema["format"] = "uri"
    elif isinstance(field, drf_fields.IPAddressField):
        if field.protocol == "ipv4":
            schema["format"] = "ipv4"
        elif field.protocol == "ipv6":
            schema["format"] = "ipv6"
        else:
            schema["anyOf"] = [{"format": "ipv4"}, {"format": "ipv6"}]
    if mode == "output":
        return schema
    if isinstance(field, drf_fields.SlugField):
        if not field.allow_unicode:  # Unicode classes (\p{L}) are not portable across validators
            schema["pattern"] = SLUG_PATTERN
    elif isinstance(field, drf_fields.RegexField):
        for validator in field.validators:
            if isinstance(validator, RegexValidator) and not validator.inverse_match:
                # Python's end-of-string anchor has no ECMA 262 spelling but "$".
                pattern = validator.regex if isinstance(validator.regex, str) else validator.regex.pattern
                schema["pattern"] = pattern.replace(r"\Z", "$")
                break
    min_length = field.min_length or 0
    if not field.allow_blank:
        min_length = max(min_length, 1)
    if min_length:
        schema["minLength"] = min_length
    if field.max_length is not None:
        schema["maxLength"] = field.max_length
    return schema


def _array(items: dict[str, Any], field: Any, mode: Mode) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": items}
    if mode == "input":
        min_items = getattr(field, "min_length", None) or 0
        if not getattr(field, "allow_empty", True):
            min_items = max(min_items, 1)
        if min_items:
            schema["minItems"] = min_items
        if getattr(field, "max_length", None) is not None:
            schema["maxItems"] = field.max_length
    return schema


def _base_schema(field: Any, mode: Mode) -> dict[str, Any]:
    """The type part of a field's schema, without description, default or nullability."""
    custom = getattr(field, "mcp_json_schema", None)
    if custom is not None:
        return dict(custom(mode) if callable(custom) else custom)
    if isinstance(field, serializers.ListSerializer):
        return _array(serializer_schema(field.child, mode), field, mode)
    if isinstance(field, serializers.BaseSerializer):
        return serializer_schema(field, mode)
    if isinstance(field, relations.ManyRelatedField):
        return _array(_relation_schema(field.child_relation, mode), field, mode)
    if isinstance(field, relations.RelatedField):
        return _relation_schema(field, mode)
    if isinstance(field, drf_fields.BooleanField):
        return {"type": "boolean"}
    if isinstance(field, drf_fields.MultipleChoiceField):
        items = _choice_schema(field.choices, allow_blank=field.allow_blank, mode=mode)
        schema = _array(items, field, mode)
        schema["uniqueItems"] = True
        return schema
    if isinstance(field, drf_fields.ChoiceField):
        return _choice_schema(field.choices, allow_blank=field.allow_blank, mode=mode)
    if isinstance(field, drf_fields.FileField):
        return {"type": "string"}
    if isinstance(field, drf_fields.CharField):
        return _string_schema(field, mode)
    if isinstance(field, drf_fields.UUIDField):
        if field.uuid_format == "int":
            return {"type": "integer"} if mode == "output" else {"type": ["string", "integer"]}
        return {"type": "string", "format": "uuid"} if field.uuid_format == "hex_verbose" else {"type": "string"}
    if isinstance(field, drf_fields.DecimalField):
        if mode == "output":
            as_string = getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
            return {"type": "string"} if as_string else {"type": "number"}
        schema = {"type": ["number", "string"], "pattern": DECIMAL_PATTERN}
        _bounds(schema, field.min_value, field.max_value)
        return schema
    if isinstance(field, drf_fields.IntegerField):
        if mode == "output":
            as_string = isinstance(field, drf_fields.BigIntegerField) and getattr(
                field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING
            )
            return {"type": "string"} if as_string else {"type": "integer"}
        schema = {"type": "integer"}
        _bounds(schema, field.min_value, field.max_value)
        return schema
    if isinstance(field, drf_fields.FloatField):
        schema = {"type": "number"}
        if mode == "input":
            _bounds(schema, field.min_value, field.max_value)
        return schema
    if isinstance(field, drf_fields.DateTimeField):
        return {"type": "string", "format": "date-time"}
    if isinstance(field, drf_fields.DateField):
        return {"type": "string", "format": "date"}
    if isinstance(field, drf_fields.TimeField):
        return {"type": "string", "format": "time"}
    if isinstance(field, drf_fields.DurationField):
        # DRF reads ISO 8601 durations but writes Django's "[D] HH:MM:SS" form.
        return {"type": "string", "format": "duration"} if mode == "input" else {"type": "string"}
    if isinstance(field, drf_fields.ListField):
        return _array(field_schema(field.child, mode), field, mode)
    if isinstance(field, drf_fields.DictField):
        schema = {"type": "object"}
        if not isinstance(field.child, drf_fields._UnvalidatedField):
            schema["additionalProperties"] = field_schema(field.child, mode)
        if mode == "input" and not field.allow_empty:
            schema["minProperties"] = 1
        return schema
    if isinstance(field, drf_fields.JSONField):
        return {"type": "string", "contentMediaType": "application/json"} if field.binary else {}
    # ReadOnlyField, SerializerMethodField, ModelField, HiddenField, unknown custom fields: any.
    return {}


def _is_nullable(field: Any, mode: Mode) -> bool:
    if getattr(field, "allow_null", False):
        return True
    if mode == "output":
        if isinstance(field, drf_fields.FileField):
            return True  # an empty file is written as null
        # ModelSerializer marks non-editable fields read-only without allow_null, even when the
        # column is nullable; results must still validate.
        model_field = _model_field_of(field, field.parent)
        return bool(getattr(model_field, "null", False))
    return False


def _description(field: Any) -> str:
    parts = [str(field.help_text)] if getattr(field, "help_text", None) else []
    if isinstance(field, drf_fields.ChoiceField):
        labels = _choice_labels(field.choices)
        if labels:
            parts.append(labels)
    return " ".join(parts)


def field_schema(field: Any, mode: Mode = "input") -> dict[str, Any]:
    """The JSON Schema of one serializer field (or nested serializer)."""
    schema = _base_schema(field, mode)
    description = _description(field)
    if description:
        schema["description"] = description
    if mode == "input":
        default = getattr(field, "default", drf_fields.empty)
        if default is not drf_fields.empty and not callable(default):
            try:
                schema["default"] = jsonable(default if default is None else field.to_representation(default))
            except Exception:  # a default the field cannot represent is simply not advertised
                pass
    if _is_nullable(field, mode):
        schema = nullable(schema)
    return schema


def is_input_field(field: Any) -> bool:
    return not (field.read_only or isinstance(field, drf_fields.HiddenField))


def serializer_schema(serializer: Any, mode: Mode = "input", *, partial: bool = False) -> dict[str, Any]:
    """The object schema of a serializer (class or instance).

    ``partial`` (updates): no field is required. Output schemas list no ``required`` fields:
    clients validate results against them, and a serializer may skip absent attributes.
    """
    if isinstance(serializer, type):
        serializer = serializer()
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in serializer.fields.items():
        if mode == "input" and not is_input_field(field):
            continue
        if mode == "output" and field.write_only:
            continue
        properties[name] = field_schema(field, mode)
        if mode == "input" and field.required and not partial:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def error_lines(detail: Any, path: str = "") -> list[str]:
    """``- field: message`` lines from DRF's ``serializer.errors`` (nested dicts and lists)."""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            name = "" if key == api_settings.NON_FIELD_ERRORS_KEY else echo(str(key))
            lines.extend(error_lines(value, f"{path}.{name}" if path and name else (name or path)))
        return lines
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            # Messages may repeat the client's value ('"…" is not a valid choice.'): bounded.
            return [f"- {path}: {echo(item)}" if path else f"- {echo(item)}" for item in detail]
        lines = []
        for index, item in enumerate(detail):
            if item:
                lines.extend(error_lines(item, f"{path}.{index}" if path else str(index)))
        return lines
    return [f"- {path}: {echo(str(detail))}" if path else f"- {echo(str(detail))}"]


SNAKE_BOUNDARIES = (re.compile(r"([A-Z]+)([A-Z][a-z])"), re.compile(r"([a-z0-9])([A-Z])"))


def snake_case(name: str) -> str:
    """``BookLoan`` -> ``book_loan``, ``HTTPLog`` -> ``http_log``."""
    for boundary in SNAKE_BOUNDARIES:
        name = boundary.sub(r"\1_\2", name)
    return name.lower()
