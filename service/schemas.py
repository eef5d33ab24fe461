"""Request and response models for memos."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

Title = Annotated[str, Field(min_length=1, max_length=100)]
Content = Annotated[str, Field(min_length=1)]
Priority = Annotated[int, Field(ge=1, le=4)]
Category = Annotated[str, Field(max_length=50)]
Author = Annotated[str, Field(max_length=100)]
Tag = Annotated[str, Field(min_length=1, max_length=50)]


class MemoBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    content: Content
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    priority: Priority = 2
    category: Category | None = None
    author: Author | None = None
    is_archived: bool = False
    is_favorite: bool = False


class MemoCreate(MemoBase):
    pass


class MemoUpdate(BaseModel):
    """A partial update: only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    content: Content | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    priority: Priority | None = None
    category: Category | None = None
    author: Author | None = None
    is_archived: bool | None = None
    is_favorite: bool | None = None

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
