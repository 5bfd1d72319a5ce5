"""Input/output schemas of function tools (type hints) and model tools (DRF serializer fields).

Every generated schema must be a valid JSON Schema 2020-12 document, and must say what the
validator behind it does: values the schema accepts are accepted by pydantic / DRF, and values
both should refuse are refused by both.
"""

from __future__ import annotations

import datetime
import enum
import inspect
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

import pytest
from django.test import override_settings
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field
from rest_framework import serializers
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from demo_library.models import Author, Book, Loan
from demo_library.serializers import BookSerializer, LoanSerializer
from mcp_sse.registry.drf import error_lines, field_schema, jsonable, serializer_schema, snake_case
from mcp_sse.registry.functions import FunctionTool
from mcp_sse.registry.model_tools import build_model_tools

FORMATS = Draft202012Validator.FORMAT_CHECKER


def errors_of(schema: dict[str, Any], instance: Any) -> list[str]:
    validator = Draft202012Validator(schema, format_checker=FORMATS)
    return [error.message for error in validator.iter_errors(instance)]


def assert_valid_schema(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)


# -- function tools: type hints -------------------------------------------------------------
class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Point:
    x: int
    y: int = 0


class Movie(TypedDict):
    title: str
    year: int


class Address(BaseModel):
    street: str
    zip: Annotated[str, Field(pattern=r"^\d{5}$")]


def tool_with(annotation: Any, default: Any = inspect.Parameter.empty) -> FunctionTool:
    """A function tool with one parameter ``value`` of the given annotation."""

    def func(value):  # type: ignore[no-untyped-def]
        return None

    func.__annotations__ = {"value": annotation}
    if default is not inspect.Parameter.empty:
        func.__defaults__ = (default,)
    return FunctionTool(func, name="t")


HINT_CASES: list[tuple[str, Any, Any, list[Any], list[Any]]] = [
    # id, annotation, default, accepted values, refused values
    ("str", str, inspect.Parameter.empty, ["a", ""], [1, None]),
    ("int", int, inspect.Parameter.empty, [0, -3], [1.5, "x", None]),
    ("float", float, inspect.Parameter.empty, [1.5, 2], ["x"]),
    ("bool", bool, inspect.Parameter.empty, [True, False], ["yes", None]),
    ("optional", int | None, None, [None, 4], ["x"]),
    ("literal", Literal["a", "b"], inspect.Parameter.empty, ["a", "b"], ["c", 1]),
    ("enum", Colour, inspect.Parameter.empty, ["red", "green"], ["blue"]),
    ("list", list[int], inspect.Parameter.empty, [[], [1, 2]], [[1, "x"], "1"]),
    ("dict", dict[str, int], inspect.Parameter.empty, [{}, {"a": 1}], [{"a": "x"}, [1]]),
    ("dataclass", Point, inspect.Parameter.empty, [{"x": 1}, {"x": 1, "y": 2}], [{"y": 1}, {"x": "a"}]),
    ("typeddict", Movie, inspect.Parameter.empty, [{"title": "t", "year": 1999}], [{"title": "t"}]),
    ("pydantic", Address, inspect.Parameter.empty, [{"street": "s", "zip": "12345"}], [{"street": "s", "zip": "1"}]),
    ("nested", list[Point], inspect.Parameter.empty, [[{"x": 1}]], [[{"y": 1}]]),
    ("annotated-bounds", Annotated[int, Field(ge=1, le=5)], inspect.Parameter.empty, [1, 5], [0, 6]),
    (
        "annotated-lengths",
        Annotated[str, Field(min_length=2, max_length=3, description="A code")],
        inspect.Parameter.empty,
        ["ab", "abc"],
        ["a", "abcd"],
    ),
]


@pytest.mark.parametrize(
    ("annotation", "default", "accepted", "refused"),
    [case[1:] for case in HINT_CASES],
    ids=[case[0] for case in HINT_CASES],
)
def test_function_tool_schema_matches_validation(
    annotation: Any, default: Any, accepted: list[Any], refused: list[Any]
) -> None:
    tool = tool_with(annotation, default)
    schema = tool.input_schema
    assert_valid_schema(schema)
    assert schema["type"] == "object"
    assert ("value" in schema.get("required", [])) is (default is inspect.Parameter.empty)
    for value in accepted:
        assert errors_of(schema, {"value": value}) == [], value
        tool.validate({"value": value})  # pydantic agrees
    for value in refused:
        assert errors_of(schema, {"value": value}), value


def test_function_tool_schema_details() -> None:
    assert tool_with(str).input_schema["properties"]["value"] == {"type": "string"}
    assert tool_with(float).input_schema["properties"]["value"] == {"type": "number"}
    assert tool_with(Literal["a", "b"]).input_schema["properties"]["value"]["enum"] == ["a", "b"]
    bounded = tool_with(Annotated[int, Field(ge=1, le=5)]).input_schema["properties"]["value"]
    assert (bounded["minimum"], bounded["maximum"]) == (1, 5)
    described = tool_with(Annotated[str, Field(description="A code")]).input_schema["properties"]["value"]
    assert described["description"] == "A code"
    assert "default" not in tool_with(int).input_schema["properties"]["value"]
    assert tool_with(int, 7).input_schema["properties"]["value"]["default"] == 7


def test_function_tool_takes_parameter_text_from_docstrings() -> None:
    def google(ctx, query: str, limit: int = 10) -> str:  # type: ignore[no-untyped-def]
        """Find things.

        Args:
            query: Words to look for,
                over two lines.
            limit: How many to return.
        """
        return ""

    def sphinx(query: str) -> str:
        """Find things.

        :param query: Words to look for.
        """
        return ""

    schema = FunctionTool(google).input_schema
    assert_valid_schema(schema)
    assert "ctx" not in schema["properties"]  # the context is not an argument
    assert schema["properties"]["query"]["description"] == "Words to look for, over two lines."
    assert schema["properties"]["limit"]["description"] == "How many to return."
    assert schema["required"] == ["query"]
    assert FunctionTool(google).description == "Find things."
    assert FunctionTool(sphinx).input_schema["properties"]["query"]["description"] == "Words to look for."


@pytest.mark.parametrize(
    ("annotation", "result", "wrapped"),
    [
        (int, 3, True),
        (list[Movie], [{"title": "t", "year": 1}], True),
        (Point, {"x": 1, "y": 2}, False),
        (Address, {"street": "s", "zip": "12345"}, False),
        (dict[str, float], {"a": 1.5}, False),
        (Colour | None, None, True),
    ],
    ids=["int", "list-typeddict", "dataclass", "pydantic", "dict", "optional-enum"],
)
def test_function_tool_output_schemas(annotation: Any, result: Any, wrapped: bool) -> None:
    def func():  # type: ignore[no-untyped-def]
        return None

    func.__annotations__ = {"return": annotation}
    tool = FunctionTool(func, name="t")
    assert tool.output_schema is not None
    assert_valid_schema(tool.output_schema)
    assert tool.wrap_output is wrapped
    assert errors_of(tool.output_schema, {"result": result} if wrapped else result) == []


# -- DRF serializer fields ------------------------------------------------------------------
class Inner(serializers.Serializer[Any]):
    label = serializers.CharField(max_length=5)


class Everything(serializers.Serializer[Any]):
    name = serializers.CharField(min_length=2, max_length=10, help_text="Display name")
    nickname = serializers.CharField(allow_blank=True, required=False, default="anon")
    email = serializers.EmailField()
    homepage = serializers.URLField()
    ref = serializers.UUIDField()
    slug = serializers.SlugField()
    address = serializers.IPAddressField()
    v4 = serializers.IPAddressField(protocol="IPv4")
    code = serializers.RegexField(r"^[A-Z]{3}\Z")
    count = serializers.IntegerField(min_value=0, max_value=10)
    ratio = serializers.FloatField(min_value=0, max_value=1)
    price = serializers.DecimalField(max_digits=6, decimal_places=2, min_value=Decimal("0"), max_value=Decimal(1000))
    active = serializers.BooleanField(default=False)
    day = serializers.DateField()
    moment = serializers.DateTimeField()
    clock = serializers.TimeField()
    span = serializers.DurationField()
    colour = serializers.ChoiceField(choices=[("r", "Red"), ("g", "Green")])
    rank = serializers.ChoiceField(choices=[1, 2, 3], required=False)
    sizes = serializers.MultipleChoiceField(choices=["s", "m", "l"], allow_empty=False)
    numbers = serializers.ListField(child=serializers.IntegerField(min_value=0), min_length=1, max_length=3)
    labels = serializers.DictField(child=serializers.CharField(max_length=3))
    data = serializers.JSONField()
    inner = Inner()
    inners = Inner(many=True, allow_empty=False)
    maybe = serializers.IntegerField(allow_null=True, required=False)
    secret = serializers.CharField(write_only=True)
    hidden = serializers.HiddenField(default="h")
    created = serializers.DateTimeField(read_only=True)


VALID: dict[str, Any] = {
    "name": "Ada",
    "email": "ada@example.com",
    "homepage": "https://example.com/ada",
    "ref": "4b1f0d56-1b4e-4a8e-9b59-8b1c0c7f0d2e",
    "slug": "ada-lovelace_1",
    "address": "::1",
    "v4": "10.0.0.1",
    "code": "ABC",
    "count": 3,
    "ratio": 0.5,
    "price": "12.50",
    "day": "2024-02-29",
    "moment": "2024-01-02T03:04:05Z",
    "clock": "12:30:00",
    "span": "P1DT2H",
    "colour": "r",
    "sizes": ["s", "m"],
    "numbers": [1, 2],
    "labels": {"a": "abc"},
    "data": {"any": [1, "thing"]},
    "inner": {"label": "x"},
    "inners": [{"label": "y"}],
    "secret": "s3cret",
}
MISSING = object()

# (field, value) pairs DRF and the schema both accept (MISSING: leave the field out).
ACCEPTED: list[tuple[str, Any]] = [
    ("name", "abcdefghij"),
    ("nickname", ""),
    ("nickname", MISSING),
    ("address", "192.168.0.1"),
    ("count", 0),
    ("count", 10),
    ("ratio", 1),
    ("price", 12.5),
    ("price", 0),
    ("active", True),
    ("rank", 2),
    ("numbers", [1, 2, 3]),
    ("labels", {}),
    ("data", 3),
    ("maybe", None),
    ("maybe", 4),
]
# (field, value, format): values both refuse. With a format name, the schema refuses it only
# when the validator checks that format.
REFUSED: list[tuple[str, Any, str | None]] = [
    ("name", "a", None),
    ("name", "abcdefghijk", None),
    ("name", "", None),
    ("name", None, None),
    ("name", ["x"], None),
    ("name", MISSING, None),
    ("email", "not-an-email", "email"),
    ("ref", "nope", "uuid"),
    ("slug", "a b", None),
    ("address", "999.1.1.1", "ipv4"),
    ("v4", "::1", "ipv4"),
    ("code", "abc", None),
    ("code", "ABCD", None),
    ("count", -1, None),
    ("count", 11, None),
    ("count", 1.5, None),
    ("count", "x", None),
    ("ratio", 1.5, None),
    ("price", -1, None),
    ("price", 1001, None),
    ("price", "abc", None),
    ("active", "maybe", None),
    ("day", "2023-02-29", "date"),
    ("colour", "b", None),
    ("rank", 4, None),
    ("sizes", [], None),
    ("sizes", ["xl"], None),
    ("numbers", [], None),
    ("numbers", [1, 2, 3, 4], None),
    ("numbers", [-1], None),
    ("labels", {"a": "abcd"}, None),
    ("labels", "x", None),
    ("inner", {}, None),
    ("inner", {"label": "toolong"}, None),
    ("inners", [], None),
    ("inners", [{}], None),
    ("secret", MISSING, None),
]


def with_value(field: str, value: Any) -> dict[str, Any]:
    payload = dict(VALID)
    if value is MISSING:
        payload.pop(field, None)
    else:
        payload[field] = value
    return payload


def test_serializer_input_schema_is_valid_and_accepts_the_valid_payload() -> None:
    schema = serializer_schema(Everything, "input")
    assert_valid_schema(schema)
    serializer = Everything(data=VALID)
    assert serializer.is_valid(), serializer.errors
    assert errors_of(schema, VALID) == []


@pytest.mark.parametrize(("field", "value"), ACCEPTED, ids=[f"{f}={v!r}" for f, v in ACCEPTED])
def test_drf_and_schema_both_accept(field: str, value: Any) -> None:
    payload = with_value(field, value)
    serializer = Everything(data=payload)
    assert serializer.is_valid(), serializer.errors
    assert errors_of(serializer_schema(Everything, "input"), payload) == []


@pytest.mark.parametrize(("field", "value", "fmt"), REFUSED, ids=[f"{f}={v!r}" for f, v, _ in REFUSED])
def test_drf_and_schema_both_refuse(field: str, value: Any, fmt: str | None) -> None:
    payload = with_value(field, value)
    serializer = Everything(data=payload)
    assert not serializer.is_valid()
    assert field in serializer.errors
    if fmt is None or fmt in FORMATS.checkers:
        assert errors_of(serializer_schema(Everything, "input"), payload)


def test_serializer_input_schema_details() -> None:
    schema = serializer_schema(Everything, "input")
    props = schema["properties"]
    assert props["name"] == {"type": "string", "minLength": 2, "maxLength": 10, "description": "Display name"}
    assert props["nickname"] == {"type": "string", "default": "anon"}
    assert props["email"] == {"type": "string", "format": "email", "minLength": 1}
    assert props["homepage"]["format"] == "uri"
    assert props["ref"] == {"type": "string", "format": "uuid"}
    assert props["slug"]["pattern"] == "^[-a-zA-Z0-9_]+$"
    assert props["address"]["anyOf"] == [{"format": "ipv4"}, {"format": "ipv6"}]
    assert props["v4"]["format"] == "ipv4"
    assert props["code"]["pattern"] == "^[A-Z]{3}$"
    assert props["count"] == {"type": "integer", "minimum": 0, "maximum": 10}
    assert props["ratio"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert props["price"]["type"] == ["number", "string"] and props["price"]["maximum"] == 1000
    assert props["active"] == {"type": "boolean", "default": False}
    assert props["day"] == {"type": "string", "format": "date"}
    assert props["moment"] == {"type": "string", "format": "date-time"}
    assert props["clock"] == {"type": "string", "format": "time"}
    assert props["span"] == {"type": "string", "format": "duration"}
    assert props["colour"]["enum"] == ["r", "g"] and props["colour"]["type"] == "string"
    assert props["colour"]["description"] == "Choices: r (Red), g (Green)."
    assert props["rank"] == {"type": "integer", "enum": [1, 2, 3]}
    assert props["sizes"]["type"] == "array" and props["sizes"]["uniqueItems"] is True
    assert props["sizes"]["items"]["enum"] == ["s", "m", "l"] and props["sizes"]["minItems"] == 1
    assert props["numbers"] == {
        "type": "array",
        "items": {"type": "integer", "minimum": 0},
        "minItems": 1,
        "maxItems": 3,
    }
    assert props["labels"] == {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": 3, "minLength": 1},
    }
    assert props["data"] == {}
    assert props["inner"]["type"] == "object" and props["inner"]["required"] == ["label"]
    assert props["inners"]["type"] == "array" and props["inners"]["items"]["properties"]["label"]["maxLength"] == 5
    assert props["maybe"] == {"type": ["integer", "null"]}
    assert "hidden" not in props and "created" not in props  # HiddenField, read_only
    assert "secret" in props
    assert "nickname" not in schema["required"] and "maybe" not in schema["required"]
    assert "active" not in schema["required"]  # has a default
    assert {"name", "email", "inner", "inners", "secret"} <= set(schema["required"])


def test_serializer_output_schema_describes_what_the_serializer_writes() -> None:
    schema = serializer_schema(Everything, "output")
    assert_valid_schema(schema)
    props = schema["properties"]
    assert "secret" not in props and "hidden" not in props  # write-only fields are not written
    assert props["created"] == {"type": "string", "format": "date-time"}
    assert props["price"] == {"type": "string"}  # DRF writes decimals as strings by default
    assert props["span"] == {"type": "string"}  # written as "1 02:00:00", not ISO 8601
    assert "minLength" not in props["name"] and "enum" not in props["colour"]  # types only
    instance = {
        **VALID,
        "ref": uuid.UUID(VALID["ref"]),
        "price": Decimal("12.50"),
        "day": datetime.date(2024, 2, 29),
        "moment": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "clock": datetime.time(12, 30),
        "span": datetime.timedelta(days=1, hours=2),
        "sizes": {"s"},
        "maybe": None,
        "created": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        "colour": "not-a-choice-any-more",  # stored data need not match today's choices
    }
    assert errors_of(schema, jsonable(Everything(instance).data)) == []


def test_relations_map_to_the_key_they_point_at() -> None:
    class Relations(serializers.Serializer[Any]):
        author = serializers.PrimaryKeyRelatedField(queryset=Author.objects.all(), help_text="Who wrote it")
        authors = serializers.PrimaryKeyRelatedField(queryset=Author.objects.all(), many=True)
        maybe_author = serializers.PrimaryKeyRelatedField(queryset=Author.objects.all(), allow_null=True)
        author_name = serializers.SlugRelatedField(slug_field="name", queryset=Author.objects.all())
        born = serializers.SlugRelatedField(slug_field="born", queryset=Author.objects.all())
        label = serializers.StringRelatedField(source="author")
        by_uuid = serializers.PrimaryKeyRelatedField(queryset=Author.objects.all(), pk_field=serializers.UUIDField())

    schema = serializer_schema(Relations, "input")
    assert_valid_schema(schema)
    props = schema["properties"]
    assert props["author"] == {"type": "integer", "description": "Who wrote it"}
    assert props["authors"] == {"type": "array", "items": {"type": "integer"}}
    assert props["maybe_author"] == {"type": ["integer", "null"]}
    assert props["author_name"] == {"type": "string"}
    assert props["born"] == {"type": "integer"}
    assert props["by_uuid"] == {"type": "string", "format": "uuid"}
    assert "label" not in props  # read-only
    output = serializer_schema(Relations, "output")
    assert_valid_schema(output)
    assert output["properties"]["label"] == {"type": "string"}


def test_other_fields_and_the_custom_schema_hook() -> None:
    class Year(serializers.IntegerField):
        mcp_json_schema = {"type": "integer", "minimum": 1900}

    class Misc(serializers.Serializer[Any]):
        attachment = serializers.FileField()
        link = serializers.HyperlinkedRelatedField(view_name="author-detail", queryset=Author.objects.all())
        computed = serializers.SerializerMethodField()
        raw = serializers.ReadOnlyField()
        as_int = serializers.UUIDField(format="int")
        year = Year()

        def get_computed(self, obj: Any) -> Any:
            return None

    inputs = serializer_schema(Misc, "input")
    outputs = serializer_schema(Misc, "output")
    assert_valid_schema(inputs)
    assert_valid_schema(outputs)
    assert set(inputs["properties"]) == {"attachment", "link", "as_int", "year"}
    assert inputs["properties"]["link"] == {"type": "string", "format": "uri"}
    assert inputs["properties"]["year"] == {"type": "integer", "minimum": 1900}
    assert outputs["properties"]["attachment"] == {"type": ["string", "null"]}  # no file: null
    assert outputs["properties"]["computed"] == {} and outputs["properties"]["raw"] == {}
    assert outputs["properties"]["as_int"] == {"type": "integer"}


def test_model_serializer_fields() -> None:
    class ReadOnlyAuthor(serializers.ModelSerializer[Book]):
        class Meta:
            model = Book
            fields = ["id", "title", "author", "published", "owner"]
            read_only_fields = ["author"]

    output = serializer_schema(ReadOnlyAuthor, "output")
    assert_valid_schema(output)
    # A read-only relation has no queryset: its type comes from the model's foreign key.
    assert output["properties"]["author"] == {"type": "integer"}
    assert output["properties"]["owner"] == {"type": ["integer", "null"]}
    assert output["properties"]["published"]["type"] == ["integer", "null"]
    book = Book(id=1, title="T", author=Author(id=2, name="A"), published=None, owner=None)
    assert errors_of(output, jsonable(ReadOnlyAuthor(book).data)) == []

    loans = serializer_schema(LoanSerializer, "input")
    assert set(loans["properties"]) == {"book", "returned"}  # borrower hidden, borrowed not editable
    assert loans["required"] == ["book"]
    assert loans["properties"]["returned"]["type"] == ["string", "null"]
    assert field_schema(BookSerializer().fields["title"]) == {
        "type": "string",
        "minLength": 1,
        "maxLength": 300,
        "description": "The book's title.",
    }


# -- model tools ----------------------------------------------------------------------------
def test_model_tool_schemas_are_valid_documents() -> None:
    problems: list[tuple[str, str]] = []
    tools = build_model_tools(
        Book,
        serializer=BookSerializer,
        filter_fields=["author", "genre", "published", "author__name", "loans__borrower"],
        search_fields=["title", "author__name"],
        ordering_fields=["title", "-published"],
        max_page_size=30,
        problems=problems,
    )
    assert [t.name for t in tools] == ["book_list", "book_get", "book_create", "book_update", "book_delete"]
    assert problems and "-published" in problems[0][1]  # ordering names fields; '-' is the caller's choice
    for tool in tools:
        assert tool.kind == "model"
        assert_valid_schema(tool.input_schema)
        assert tool.output_schema is not None
        assert_valid_schema(tool.output_schema)
        assert tool.input_schema["additionalProperties"] is False
    listing = tools[0].input_schema["properties"]
    assert listing["author__name"] == {"type": "string", "description": "Only books whose author__name equals this."}
    assert listing["loans__borrower"]["type"] == "integer"
    assert listing["limit"]["maximum"] == 30 and listing["limit"]["default"] == 20
    assert listing["ordering"]["enum"] == ["title", "-title"]
    assert tools[0].options.to_many_paths == frozenset({"loans__borrower"})
    assert tools[1].input_schema == {
        "type": "object",
        "properties": {"id": {"type": "integer", "description": "The book's id."}},
        "required": ["id"],
        "additionalProperties": False,
    }
    assert [t.required_permission for t in tools] == [
        "demo_library.view_book",
        "demo_library.view_book",
        "demo_library.add_book",
        "demo_library.change_book",
        "demo_library.delete_book",
    ]


def test_model_tool_defaults_and_problems() -> None:
    problems: list[tuple[str, str]] = []
    tools = build_model_tools(Loan, actions=["create", "list"], filter_fields=["nope", "limit"], problems=problems)
    assert [t.name for t in tools] == ["loan_create", "loan_list"]
    # No serializer: a ModelSerializer with every field.
    assert tools[0].input_schema["required"] == ["book", "borrower"]
    assert "borrowed" not in tools[0].input_schema["properties"]
    assert sorted(message for _, message in problems) == [
        "demo_library.Loan: filter_fields 'limit' clashes with a list argument",
        "demo_library.Loan: filter_fields names unknown field 'nope'",
    ]
    assert list(tools[1].input_schema["properties"]) == ["limit", "offset"]
    with pytest.raises(ValueError, match="unknown model tool action"):
        build_model_tools(Loan, actions=["patch"])
    with pytest.raises(TypeError):
        build_model_tools(LoanSerializer)  # type: ignore[arg-type]


def test_flat_schemas_setting_flattens_model_tool_input() -> None:
    with override_settings(MCP_SSE={"FLAT_SCHEMAS": True}):
        tools = build_model_tools(Book, serializer=BookSerializer, filter_fields=["published"])
    for tool in tools:
        assert_valid_schema(tool.input_schema)
        for prop in tool.input_schema["properties"].values():
            assert not isinstance(prop.get("type"), list), prop
    update = next(t for t in tools if t.action == "update")
    assert update.input_schema["properties"]["published"]["type"] == "integer"
    # Output schemas keep null: results hold nulls and clients validate them.
    assert update.output_schema is not None
    assert update.output_schema["properties"]["published"]["type"] == ["integer", "null"]


def test_error_lines_and_names() -> None:
    detail = {
        "title": ["This field is required."],
        "inner": {"label": ["Too long."]},
        "inners": [{}, {"label": ["Bad."]}],
        "non_field_errors": ["Dates overlap."],
    }
    assert error_lines(detail) == [
        "- title: This field is required.",
        "- inner.label: Too long.",
        "- inners.1.label: Bad.",
        "- Dates overlap.",
    ]
    assert snake_case("Book") == "book"
    assert snake_case("BookLoan") == "book_loan"
    assert snake_case("HTTPLog") == "http_log"
