"""The memo endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status

from service import repository
from service.schemas import MemoCreate, MemoPublic, MemoUpdate
from service.state import CacheDep, SessionDep

router = APIRouter(prefix="/memos", tags=["memos"])

MAX_LIMIT = 100
Skip = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _public(memo: Any) -> dict[str, Any]:
    return MemoPublic.model_validate(memo).model_dump(mode="json")


def _not_found(memo_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Memo {memo_id} not found")


@router.post("/", response_model=MemoPublic, status_code=status.HTTP_201_CREATED)
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
    q: Annotated[str, Query(min_length=1, max_length=200)],
    skip: Skip = 0,
    limit: Limit = 20,
) -> Any:
    return [_public(m) for m in await repository.search(session, q, skip, limit)]


@router.get("/{memo_id}", response_model=MemoPublic)
async def get_memo(memo_id: int, session: SessionDep, cache: CacheDep) -> Any:
    async def load() -> dict[str, Any] | None:
        memo = await repository.get(session, memo_id)
        return None if memo is None else _public(memo)

    memo = await cache.get_or_load(f"memo:{memo_id}", load)
    if memo is None:
        raise _not_found(memo_id)
    return memo


@router.put("/{memo_id}", response_model=MemoPublic)
async def update_memo(memo_id: int, data: MemoUpdate, session: SessionDep, cache: CacheDep) -> Any:
    changes = data.changes()
    if not changes:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="No fields to update")
    memo = await repository.update(session, memo_id, changes)
    if memo is None:
        raise _not_found(memo_id)
    await cache.invalidate()
    return _public(memo)


@router.delete("/{memo_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_memo(memo_id: int, session: SessionDep, cache: CacheDep) -> Response:
    if not await repository.remove(session, memo_id):
        raise _not_found(memo_id)
    await cache.invalidate()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
