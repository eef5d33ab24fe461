"""The memo endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from service import repository
from service.schemas import STORABLE_TEXT, ErrorMessage, MemoCreate, MemoPublic, MemoUpdate
from service.state import CacheDep, SessionDep

# Every memo route can find the database away (503); those that read a body can refuse it as
# unreadable (400: not UTF-8 JSON; a wrong shape is 422) or too large (413).
_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorMessage, "description": "Database unavailable"}
}
_BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "Body unreadable, or nothing to change"},
    413: {"model": ErrorMessage, "description": "Body too large"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorMessage, "description": "No such memo"}
}

router = APIRouter(prefix="/memos", tags=["memos"], responses=_ERRORS)

MAX_LIMIT = 100
Skip = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
# Ids are PostgreSQL integers: a larger number cannot name a memo and is refused as invalid.
MemoId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _public(memo: Any) -> dict[str, Any]:
    return MemoPublic.model_validate(memo).model_dump(mode="json")


def _not_found(memo_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Memo {memo_id} not found")


@router.post(
    "/", response_model=MemoPublic, status_code=status.HTTP_201_CREATED, responses=_BODY_ERRORS
)
async def create_memo(data: MemoCreate, session: SessionDep, cache: CacheDep) -> Any:
    memo = await repository.create(session, data)
    await cache.invalidate()
    return _public(memo)


@router.get("/", response_model=list[MemoPublic])
async def list_memos(
    session: SessionDep, cache: CacheDep, skip: Skip = 0, limit: Limit = 20
) -> Any:
    async def load() -> list[dict[str, Any]]:
        return [_public(m) for m in await repository.list_newest(session, skip, limit)]

    return await cache.get_or_load(f"list:{skip}:{limit}", load)


@router.get("/search/", response_model=list[MemoPublic])
async def search_memos(
    session: SessionDep,
    q: Annotated[str, Query(min_length=1, max_length=200, pattern=STORABLE_TEXT)],
    skip: Skip = 0,
    limit: Limit = 20,
) -> Any:
    return [_public(m) for m in await repository.search(session, q, skip, limit)]


@router.get("/{memo_id}", response_model=MemoPublic, responses=_NOT_FOUND)
async def get_memo(memo_id: MemoId, session: SessionDep, cache: CacheDep) -> Any:
    async def load() -> dict[str, Any] | None:
        memo = await repository.get(session, memo_id)
        return None if memo is None else _public(memo)

    memo = await cache.get_or_load(f"memo:{memo_id}", load)
    if memo is None:
        raise _not_found(memo_id)
    return memo


@router.put(
    "/{memo_id}",
    response_model=MemoPublic,
    responses={**_NOT_FOUND, **_BODY_ERRORS},
)
async def update_memo(
    memo_id: MemoId, data: MemoUpdate, session: SessionDep, cache: CacheDep
) -> Any:
    changes = data.changes()
    if not changes:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="No fields to update")
    memo = await repository.update(session, memo_id, changes)
    if memo is None:
        raise _not_found(memo_id)
    await cache.invalidate()
    return _public(memo)


@router.delete("/{memo_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
async def delete_memo(memo_id: MemoId, session: SessionDep, cache: CacheDep) -> Response:
    if not await repository.remove(session, memo_id):
        raise _not_found(memo_id)
    await cache.invalidate()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
