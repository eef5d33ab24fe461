"""Request and response models for memos."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator
from pydantic.json_schema import SkipJsonSchema


# A wrong JSON type is refused as the schema says, not coerced: 0 is not false (StrictBool),
# "2" is not 2 (_json_integer).
def _json_integer(value: object) -> object:
    """Lax int takes "2" and true; JSON Schema's integer takes neither, but does take 2.0."""
    if isinstance(value, str | bool):
        raise ValueError("Input should be an integer")
    return value


# PostgreSQL text cannot hold NUL. A pattern also makes pydantic refuse a lone surrogate (which a
# JSON "\ud800" escape can produce and UTF-8 cannot encode): both are 422s, not database errors.
STORABLE_TEXT = r"^[^\x00]*$"

Title = Annotated[str, Field(min_length=1, max_length=100, pattern=STORABLE_TEXT)]
Content = Annotated[str, Field(min_length=1, pattern=STORABLE_TEXT)]
Priority = Annotated[int, Field(ge=1, le=4), BeforeValidator(_json_integer)]
Category = Annotated[str, Field(max_length=50, pattern=STORABLE_TEXT)]
Author = Annotated[str, Field(max_length=100, pattern=STORABLE_TEXT)]
Tag = Annotated[str, Field(min_length=1, max_length=50, pattern=STORABLE_TEXT)]
Tags = Annotated[list[Tag], Field(max_length=50)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# An update field that may be left out but not sent as null: `SkipJsonSchema[None]` keeps null
# out of the published schema, and the default (meaning "not sent") is dropped from it too.
Unset = Field(default=None, json_schema_extra=_no_default)


class MemoBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    content: Content
    tags: Tags = Field(default_factory=list)
    priority: Priority = 2
    category: Category | None = None
    author: Author | None = None
    is_archived: StrictBool = False
    is_favorite: StrictBool = False


class MemoCreate(MemoBase):
    pass


class MemoUpdate(BaseModel):
    """A partial update: only the fields sent are changed; at least one must be sent."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    title: Title | SkipJsonSchema[None] = Unset
    content: Content | SkipJsonSchema[None] = Unset
    tags: Tags | SkipJsonSchema[None] = Unset
    priority: Priority | SkipJsonSchema[None] = Unset
    category: Category | None = None
    author: Author | None = None
    is_archived: StrictBool | SkipJsonSchema[None] = Unset
    is_favorite: StrictBool | SkipJsonSchema[None] = Unset

    @model_validator(mode="after")
    def _required_fields_not_null(self) -> MemoUpdate:
        for name in sorted(self.model_fields_set - NULLABLE_FIELDS):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, object]:
        return self.model_dump(exclude_unset=True)


NULLABLE_FIELDS = frozenset({"category", "author"})


class MemoPublic(MemoBase):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    updated_at: datetime


class ErrorMessage(BaseModel):
    """The body of every error response but 422's (FastAPI's own shape)."""

    detail: str
