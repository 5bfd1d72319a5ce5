"""Model-backed tools: list / get / create / update / delete for a Django model through a DRF
serializer.

Every call checks the caller's Django model permission for the action (``view``, ``add``,
``change``, ``delete``), works on the rows the queryset hook gives that caller (others are "not
found"), validates through the serializer, and runs its ORM work in a worker thread. Refusals and
validation failures are tool results with ``isError``, never protocol errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from channels.db import database_sync_to_async
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, router, transaction
from django.db.models import Q
from django.db.models.constants import LOOKUP_SEP
from django.db.models.deletion import ProtectedError, RestrictedError
from rest_framework import serializers

from ..conf import mcp_settings
from ..context import Context, SyncContext
from ..protocol.errors import echo
from .base import Tool
from .drf import error_lines, jsonable, model_field_schema, nullable, serializer_schema, snake_case
from .results import error_result, tool_result
from .schema import flatten_schema

ACTIONS = ("list", "get", "create", "update", "delete")
PERMISSION_CODENAMES = {"list": "view", "get": "view", "create": "add", "update": "change", "delete": "delete"}
DEFAULT_ANNOTATIONS: dict[str, dict[str, Any]] = {
    "list": {"readOnlyHint": True, "openWorldHint": False},
    "get": {"readOnlyHint": True, "openWorldHint": False},
    "create": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False, "openWorldHint": False},
    # An update overwrites values (not additive, so "destructive" in MCP's sense); repeating it
    # with the same arguments changes nothing more.
    "update": {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True, "openWorldHint": False},
    "delete": {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True, "openWorldHint": False},
}
LIST_ARGUMENTS = ("search", "ordering", "limit", "offset")
DEFAULT_PAGE_SIZE = 20

QuerysetHook = Union[Callable[[Any], "models.QuerySet[Any]"], str, "models.QuerySet[Any]", None]


class ToolRequest:
    """Stands in for ``request`` in serializer context (``CurrentUserDefault`` and the like
    read ``context["request"].user``). There is no HTTP request behind a tool call."""

    def __init__(self, user: Any, method: str) -> None:
        self.user = user
        self.auth = None
        self.method = method
        self.query_params: dict[str, Any] = {}
        self.META: dict[str, Any] = {}

    def build_absolute_uri(self, location: str | None = None) -> str:
        return location or "/"


@dataclass
class ModelToolOptions:
    """How one model is exposed; shared by its tools."""

    model: type[models.Model]
    serializer_class: type[serializers.BaseSerializer[Any]]
    prefix: str
    filter_fields: tuple[str, ...] = ()
    search_fields: tuple[str, ...] = ()
    ordering_fields: tuple[str, ...] = ()
    max_page_size: int = 100
    default_page_size: int = DEFAULT_PAGE_SIZE
    queryset: QuerysetHook = None
    # Paths that cross to-many relations: filtering on them needs DISTINCT.
    to_many_paths: frozenset[str] = field(default_factory=frozenset)

    @property
    def verbose_name(self) -> str:
        return str(self.model._meta.verbose_name)

    @property
    def verbose_name_plural(self) -> str:
        return str(self.model._meta.verbose_name_plural)

    @property
    def pk_name(self) -> str:
        return self.model._meta.pk.name

    def permission(self, action: str) -> str:
        meta = self.model._meta
        return f"{meta.app_label}.{PERMISSION_CODENAMES[action]}_{meta.model_name}"

    def base_queryset(self, user: Any) -> models.QuerySet[Any]:
        """The rows ``user`` may see: the hook's queryset, or every row."""
        hook = self.queryset
        manager = self.model._default_manager
        if hook is None:
            return manager.all()
        if isinstance(hook, models.QuerySet):
            return hook.all()
        if isinstance(hook, str):
            method = getattr(manager, hook, None) or getattr(manager.all(), hook)
            result = method(user)
        else:
            result = hook(user)
        if not isinstance(result, models.QuerySet) or result.model is not self.model:
            raise TypeError(f"the queryset hook of {self.prefix!r} must return a QuerySet of {self.model.__name__}")
        return result


def resolve_path(model: type[models.Model], path: str) -> tuple[Any, bool]:
    """The model field at the end of ``author__name`` and whether the path crosses a to-many
    relation. Raises ``FieldDoesNotExist``."""
    current: Any = model
    final: Any = None
    to_many = False
    parts = path.split(LOOKUP_SEP)
    for index, part in enumerate(parts):
        final = current._meta.get_field(part)
        to_many = to_many or bool(final.many_to_many or final.one_to_many)
        if index < len(parts) - 1:
            if not final.is_relation or final.related_model is None:
                raise FieldDoesNotExist(f"{part!r} is not a relation")
            current = final.related_model
    return final, to_many


def _python_value(model_field: Any, value: Any) -> Any:
    """A filter value as the field's Python type (raises Django's ValidationError)."""
    if model_field.is_relation:
        target = getattr(model_field, "target_field", None)
        if target is None or target is model_field:
            target = model_field.related_model._meta.pk
        return target.to_python(value)
    return model_field.to_python(value)


def _validation_message(exc: DjangoValidationError) -> str:
    # Django's messages may repeat the value ('"…" value must be an integer.'): bounded.
    return echo(" ".join(str(message) for message in exc.messages))


def invalid_arguments(lines: Sequence[str]) -> dict[str, Any]:
    return error_result("Invalid arguments:\n" + "\n".join(lines))


def _integer(
    arguments: dict[str, Any], name: str, default: int, minimum: int, maximum: int | None, errors: list[str]
) -> int:
    value = arguments.get(name, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        errors.append(f"- {name}: must be an integer")
        return default
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        errors.append(f"- {name}: must be {bound}")
        return default
    return value


class ModelTool(Tool):
    """One action on one model."""

    kind = "model"

    def __init__(self, options: ModelToolOptions, action: str, annotations: dict[str, Any] | None = None) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown model tool action {action!r}; expected one of {', '.join(ACTIONS)}")
        self.options = options
        self.action = action
        self.name = f"{options.prefix}_{action}"
        self.required_permission = options.permission(action)
        self.annotations = {**DEFAULT_ANNOTATIONS[action], **(annotations or {})}
        serializer_class = options.serializer_class
        self.source = f"{options.model._meta.label} ({serializer_class.__module__}.{serializer_class.__qualname__})"
        self.item_schema = serializer_schema(serializer_class, "output")
        self.title, self.description = self.describe()
        input_schema = self.build_input_schema()
        self.input_schema = flatten_schema(input_schema) if mcp_settings.FLAT_SCHEMAS else input_schema
        # Output schemas keep "null" in their types even with FLAT_SCHEMAS: flattening drops it,
        # and then results holding nulls would fail the client's validation.
        self.output_schema = self.build_output_schema()

    # -- definition ---------------------------------------------------------------------
    def describe(self) -> tuple[str, str]:
        opts = self.options
        one, many, pk = opts.verbose_name, opts.verbose_name_plural, opts.pk_name
        if self.action == "list":
            text = [f"List {many}, {opts.default_page_size} per page by default (at most {opts.max_page_size})."]
            if opts.filter_fields:
                text.append(f"Filter by exact value of: {', '.join(opts.filter_fields)}.")
            if opts.search_fields:
                text.append(f"`search` matches words (case-insensitive) in: {', '.join(opts.search_fields)}.")
            if opts.ordering_fields:
                text.append(f"`ordering`: one of {', '.join(opts.ordering_fields)}, prefix '-' for descending.")
            text.append("Returns `items`, `total`, and `next_offset` to pass as `offset` for the next page.")
            return f"List {many}", " ".join(text)
        if self.action == "get":
            return f"Get {one}", f"Get one {one} by {pk}."
        if self.action == "create":
            return f"Create {one}", f"Create one {one}; returns it as saved."
        if self.action == "update":
            return (
                f"Update {one}",
                f"Change one {one}, found by {pk}: only the fields given change. Returns it as saved.",
            )
        return f"Delete {one}", f"Delete one {one} by {pk}. This cannot be undone."

    def pk_schema(self) -> dict[str, Any]:
        schema = model_field_schema(self.options.model._meta.pk)
        schema["description"] = f"The {self.options.verbose_name}'s {self.options.pk_name}."
        return schema

    def build_input_schema(self) -> dict[str, Any]:
        opts = self.options
        properties: dict[str, Any]
        required: list[str] = []
        if self.action == "list":
            properties = {}
            for path in opts.filter_fields:
                model_field, _ = resolve_path(opts.model, path)
                schema = model_field_schema(model_field)
                if getattr(model_field, "null", False):
                    schema = nullable(schema)
                schema["description"] = f"Only {opts.verbose_name_plural} whose {path} equals this."
                properties[path] = schema
            if opts.search_fields:
                properties["search"] = {"type": "string", "description": "Words to look for (all must match)."}
            if opts.ordering_fields:
                choices = [key for name in opts.ordering_fields for key in (name, f"-{name}")]
                properties["ordering"] = {"type": "string", "enum": choices, "description": "Sort order."}
            properties["limit"] = {
                "type": "integer",
                "minimum": 1,
                "maximum": opts.max_page_size,
                "default": opts.default_page_size,
                "description": "Items per page.",
            }
            properties["offset"] = {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "description": "Items to skip (the `next_offset` of the previous page).",
            }
        elif self.action in ("get", "delete"):
            properties, required = {opts.pk_name: self.pk_schema()}, [opts.pk_name]
        elif self.action == "create":
            fields = serializer_schema(opts.serializer_class, "input")
            properties, required = fields["properties"], list(fields.get("required", []))
        else:
            fields = serializer_schema(opts.serializer_class, "input", partial=True)
            properties = {opts.pk_name: self.pk_schema(), **fields["properties"]}
            required = [opts.pk_name]
        built: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            built["required"] = required
        built["additionalProperties"] = False
        return built

    def build_output_schema(self) -> dict[str, Any]:
        if self.action == "list":
            return {
                "type": "object",
                "properties": {
                    "items": {"type": "array", "items": self.item_schema},
                    "total": {"type": "integer", "description": "Rows matching, over all pages."},
                    "offset": {"type": "integer"},
                    "limit": {"type": "integer"},
                    "next_offset": {"type": "integer", "description": "Absent on the last page."},
                },
                "required": ["items", "total", "offset", "limit"],
            }
        if self.action == "delete":
            pk_schema = model_field_schema(self.options.model._meta.pk)
            return {
                "type": "object",
                "properties": {"deleted": {"type": "boolean"}, self.options.pk_name: pk_schema},
                "required": ["deleted", self.options.pk_name],
            }
        return self.item_schema

    # -- calling ------------------------------------------------------------------------
    async def call(self, arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        user = await ctx.get_user()
        return await database_sync_to_async(self.run)(arguments, user, SyncContext(ctx))

    def run(self, arguments: dict[str, Any], user: Any, ctx: SyncContext | None = None) -> dict[str, Any]:
        """The whole call, in a worker thread: permission, arguments, ORM work."""
        if not user.has_perm(self.required_permission):
            doing = {"list": "listing", "get": "reading", "create": "creating", "update": "changing"}
            return error_result(
                f"Permission denied: {doing.get(self.action, 'deleting')} {self.options.verbose_name_plural} "
                f"needs the {self.required_permission!r} permission."
            )
        known = self.input_schema.get("properties", {})
        # Unknown arguments are reported together with every other problem, before any change.
        errors = [f"- {echo(name)}: unknown argument" for name in arguments if name not in known]
        arguments = {name: value for name, value in arguments.items() if name in known}
        handler = getattr(self, f"run_{self.action}")
        result: dict[str, Any] = handler(arguments, user, ctx, errors)
        return result

    def serializer_context(self, user: Any, ctx: SyncContext | None) -> dict[str, Any]:
        method = {"list": "GET", "get": "GET", "create": "POST", "update": "PATCH", "delete": "DELETE"}[self.action]
        return {"request": ToolRequest(user, method), "user": user, "mcp_context": ctx, "view": None}

    def ok(self, value: dict[str, Any]) -> dict[str, Any]:
        return tool_result(value, wrap_output=False, has_output_schema=True)

    def pk_value(self, arguments: dict[str, Any], errors: list[str]) -> Any:
        """The primary key argument as a Python value; problems are added to ``errors``."""
        name = self.options.pk_name
        if name not in arguments:
            errors.append(f"- {name}: This field is required.")
            return None
        raw = arguments[name]
        if raw is None or isinstance(raw, bool | dict | list):
            errors.append(f"- {name}: not a valid {self.options.verbose_name} {name}")
            return None
        try:
            return _python_value(self.options.model._meta.pk, raw)
        except DjangoValidationError as exc:
            errors.append(f"- {name}: {_validation_message(exc)}")
            return None

    def not_found(self, pk: Any) -> dict[str, Any]:
        return error_result(f"Not found: no {self.options.verbose_name} with {self.options.pk_name} {echo(repr(pk))}.")

    def find(self, user: Any, pk: Any) -> Any:
        return self.options.base_queryset(user).filter(pk=pk).first()

    def run_list(
        self, arguments: dict[str, Any], user: Any, ctx: SyncContext | None, errors: list[str]
    ) -> dict[str, Any]:
        opts = self.options
        limit = _integer(arguments, "limit", opts.default_page_size, 1, opts.max_page_size, errors)
        offset = _integer(arguments, "offset", 0, 0, None, errors)
        search = arguments.get("search")
        if search is not None and not isinstance(search, str):
            errors.append("- search: must be a string")
        ordering = arguments.get("ordering")
        allowed = self.input_schema.get("properties", {}).get("ordering", {}).get("enum", [])
        if ordering is not None and ordering not in allowed:
            errors.append(f"- ordering: must be one of {', '.join(allowed)}")
        lookups: dict[str, Any] = {}
        distinct = False
        for path in opts.filter_fields:
            if path not in arguments:
                continue
            model_field, _ = resolve_path(opts.model, path)
            value = arguments[path]
            distinct = distinct or path in opts.to_many_paths
            if value is None:
                if getattr(model_field, "null", False):
                    lookups[f"{path}{LOOKUP_SEP}isnull"] = True
                else:
                    errors.append(f"- {path}: may not be null")
                continue
            if isinstance(value, dict | list) or (
                isinstance(value, bool) and not isinstance(model_field, models.BooleanField)
            ):
                errors.append(f"- {path}: not a valid value for this field")
                continue
            try:
                lookups[path] = _python_value(model_field, value)
            except DjangoValidationError as exc:
                errors.append(f"- {path}: {_validation_message(exc)}")
        if errors:
            return invalid_arguments(errors)

        queryset = opts.base_queryset(user).filter(**lookups)
        if isinstance(search, str) and search.strip():
            for term in search.split():
                match = Q()
                for path in opts.search_fields:
                    match |= Q(**{f"{path}{LOOKUP_SEP}icontains": term})
                queryset = queryset.filter(match)
            distinct = distinct or any(path in opts.to_many_paths for path in opts.search_fields)
        if distinct:
            queryset = queryset.distinct()
        order = [ordering] if ordering else list(queryset.query.order_by) or list(opts.model._meta.ordering or ())
        # A final key on the primary key keeps pages stable when the sort key has ties.
        if not any(key in ("pk", "-pk", opts.pk_name, f"-{opts.pk_name}") for key in order):
            order.append("pk")
        queryset = queryset.order_by(*order)

        total = queryset.count()
        rows = list(queryset[offset : offset + limit])
        items = self.options.serializer_class(rows, many=True, context=self.serializer_context(user, ctx)).data
        page: dict[str, Any] = {"items": jsonable(items), "total": total, "offset": offset, "limit": limit}
        if offset + len(rows) < total:
            page["next_offset"] = offset + len(rows)
        return self.ok(page)

    def run_get(
        self, arguments: dict[str, Any], user: Any, ctx: SyncContext | None, errors: list[str]
    ) -> dict[str, Any]:
        _pk, instance, problem = self.locate(arguments, user, errors)
        if problem is not None:
            return problem
        data = self.options.serializer_class(instance, context=self.serializer_context(user, ctx)).data
        return self.ok(jsonable(data))

    def locate(self, arguments: dict[str, Any], user: Any, errors: list[str]) -> tuple[Any, Any, dict[str, Any] | None]:
        """(pk, row, None) for the row the arguments name, or (pk, None, error result)."""
        pk = self.pk_value(arguments, errors)
        if errors:
            return pk, None, invalid_arguments(errors)
        instance = self.find(user, pk)
        if instance is None:
            return pk, None, self.not_found(pk)
        return pk, instance, None

    def validate_and_save(self, serializer: serializers.BaseSerializer[Any], errors: list[str]) -> dict[str, Any]:
        if not serializer.is_valid() or errors:
            return invalid_arguments(errors + error_lines(serializer.errors))
        problem = self.save(serializer)
        return problem or self.ok(jsonable(serializer.data))

    def save(self, serializer: serializers.BaseSerializer[Any]) -> dict[str, Any] | None:
        """Save a validated serializer; a refusal from the serializer or the database becomes
        an error result (returned), success returns None."""
        try:
            with transaction.atomic(using=router.db_for_write(self.options.model)):
                serializer.save()
        except serializers.ValidationError as exc:
            return invalid_arguments(error_lines(exc.detail))
        except DjangoValidationError as exc:
            return invalid_arguments(error_lines(exc.message_dict if hasattr(exc, "error_dict") else exc.messages))
        except IntegrityError as exc:
            return error_result(f"The database refused the change: {exc}")
        return None

    def run_create(
        self, arguments: dict[str, Any], user: Any, ctx: SyncContext | None, errors: list[str]
    ) -> dict[str, Any]:
        serializer = self.options.serializer_class(data=arguments, context=self.serializer_context(user, ctx))
        return self.validate_and_save(serializer, errors)

    def run_update(
        self, arguments: dict[str, Any], user: Any, ctx: SyncContext | None, errors: list[str]
    ) -> dict[str, Any]:
        _pk, instance, problem = self.locate(arguments, user, errors)
        if problem is not None:
            return problem
        changes = {key: value for key, value in arguments.items() if key != self.options.pk_name}
        serializer = self.options.serializer_class(
            instance, data=changes, partial=True, context=self.serializer_context(user, ctx)
        )
        return self.validate_and_save(serializer, errors)

    def run_delete(
        self, arguments: dict[str, Any], user: Any, ctx: SyncContext | None, errors: list[str]
    ) -> dict[str, Any]:
        pk, instance, problem = self.locate(arguments, user, errors)
        if problem is not None:
            return problem
        try:
            with transaction.atomic(using=router.db_for_write(self.options.model)):
                instance.delete()
        except (ProtectedError, RestrictedError) as exc:
            blockers = ", ".join(sorted({str(obj) for obj in list(exc.args[1])[:5]}))
            return error_result(f"Cannot delete this {self.options.verbose_name}: other rows refer to it ({blockers}).")
        return self.ok({"deleted": True, self.options.pk_name: jsonable(pk)})


def default_serializer(model: type[models.Model]) -> type[serializers.ModelSerializer[Any]]:
    """A ModelSerializer with every field, for ``register_model`` without ``serializer=``."""
    meta = type("Meta", (), {"model": model, "fields": "__all__"})
    return type(f"{model.__name__}ToolSerializer", (serializers.ModelSerializer,), {"Meta": meta})


def _checked_paths(
    model: type[models.Model], paths: Iterable[str], option: str, problems: list[tuple[str, str]]
) -> tuple[tuple[str, ...], set[str]]:
    """Paths that resolve on the model (others are reported as problems and dropped), and the
    subset crossing to-many relations."""
    good: list[str] = []
    to_many: set[str] = set()
    for path in paths:
        if option == "filter_fields" and path in LIST_ARGUMENTS:
            problems.append(("invalid-option", f"{model._meta.label}: {option} {path!r} clashes with a list argument"))
            continue
        try:
            _, crosses = resolve_path(model, path)
        except FieldDoesNotExist:
            problems.append(("invalid-option", f"{model._meta.label}: {option} names unknown field {path!r}"))
            continue
        good.append(path)
        if crosses:
            to_many.add(path)
    return tuple(good), to_many


def build_model_tools(
    model: type[models.Model],
    *,
    serializer: type[serializers.BaseSerializer[Any]] | None = None,
    actions: Iterable[str] = ACTIONS,
    name_prefix: str | None = None,
    filter_fields: Iterable[str] = (),
    search_fields: Iterable[str] = (),
    ordering_fields: Iterable[str] = (),
    max_page_size: int = 100,
    default_page_size: int | None = None,
    queryset: QuerysetHook = None,
    annotations: dict[str, dict[str, Any]] | None = None,
    problems: list[tuple[str, str]] | None = None,
) -> list[ModelTool]:
    """The tools for one model. Configuration mistakes that can be skipped (unknown field
    names) go to ``problems`` (reported by system checks); wrong types and actions raise."""
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        raise TypeError(f"register_model() needs a Django model class, got {model!r}")
    if max_page_size < 1:
        raise ValueError("max_page_size must be at least 1")
    actions = list(actions)
    for action in actions:
        if action not in ACTIONS:
            raise ValueError(f"unknown model tool action {action!r}; expected some of {', '.join(ACTIONS)}")
    found = problems if problems is not None else []
    filters, filter_many = _checked_paths(model, filter_fields, "filter_fields", found)
    searches, search_many = _checked_paths(model, search_fields, "search_fields", found)
    orderings, _ = _checked_paths(model, ordering_fields, "ordering_fields", found)
    options = ModelToolOptions(
        model=model,
        serializer_class=serializer or default_serializer(model),
        prefix=name_prefix or snake_case(model.__name__),
        filter_fields=filters,
        search_fields=searches,
        ordering_fields=orderings,
        max_page_size=max_page_size,
        default_page_size=min(default_page_size or DEFAULT_PAGE_SIZE, max_page_size),
        queryset=queryset,
        to_many_paths=frozenset(filter_many | search_many),
    )
    return [ModelTool(options, action, (annotations or {}).get(action)) for action in actions]
