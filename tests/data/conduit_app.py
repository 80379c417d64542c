"""A small RealWorld "Conduit" API: FastAPI over SQLAlchemy 2's async ORM on asyncpg.

tests/test_zero_code_sqlalchemy.py runs this file under ``opentelemetry-instrument``; it holds
no wedsync-otel code. It creates its tables in a fresh database, seeds authors and articles,
then drives its own requests through httpx's ``ASGITransport`` and exits.

What it really did is written to ``CONDUIT_RECORD`` as JSON, counted from SQLAlchemy's own
events and not from any span: per request, the SQL statements sent to the driver
(``before_cursor_execute``, one per statement) and the transactions begun (``begin``), keyed by
the trace id of the request's server span; and which of the literals it sent appeared verbatim
in the SQL text, so a test that looks for them in exported spans is not looking in vain.

Environment: ``CONDUIT_DATABASE_URL`` (a ``postgresql+asyncpg://`` URL), ``CONDUIT_RECORD``
(the JSON file to write) and ``CONDUIT_LIST_SIZE`` (articles per listing, one author each).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from opentelemetry import trace
from pydantic import BaseModel
from sqlalchemy import ForeignKey, String, Text, event, select
from sqlalchemy.ext.asyncio import (
    AsyncAttrs,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload
from starlette.types import ASGIApp, Receive, Scope, Send

STEP_HEADER = "x-conduit-step"
"""Names the request for the test; the app itself never reads it."""

NEW_TITLE = "How to Train Your Dragon at a Wedding"
NEW_BODY = "Confidential: the dragon arrives at 14:30, through the orangery."


# --- models -------------------------------------------------------------------------------


class Base(AsyncAttrs, DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    bio: Mapped[str] = mapped_column(Text, default="")
    articles: Mapped[list[Article]] = relationship(back_populates="author")


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    author: Mapped[User] = relationship(back_populates="articles")  # lazy="select": one by one


# --- what the app really did, counted from SQLAlchemy's events ------------------------------


@dataclass
class Work:
    """The database work of one request."""

    step: str
    method: str
    path: str
    trace_id: str = ""
    statements: int = 0
    transactions: int = 0


_work: contextvars.ContextVar[Work | None] = contextvars.ContextVar("conduit_work", default=None)
_requests: list[Work] = []
_literals: list[str] = []
_literals_in_sql: set[str] = set()


def _on_statement(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    work = _work.get()
    if work is not None:
        work.statements += 1
    _literals_in_sql.update(literal for literal in _literals if literal in statement)


def _on_begin(conn: Any) -> None:
    work = _work.get()
    if work is not None:
        work.transactions += 1


class RecordWork:
    """ASGI middleware: the work of each request, under its server span's trace id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        work = Work(
            step=headers.get(STEP_HEADER.encode(), b"").decode(),
            method=scope["method"],
            path=scope["path"],
            trace_id=format(trace.get_current_span().get_span_context().trace_id, "032x"),
        )
        token = _work.set(work)
        try:
            await self.app(scope, receive, send)
        finally:
            _work.reset(token)
            _requests.append(work)


# --- the API ------------------------------------------------------------------------------


class NewArticle(BaseModel):
    title: str
    description: str = ""
    body: str


class NewArticleRequest(BaseModel):
    article: NewArticle


def _slugify(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _article_json(article: Article, author: User) -> dict[str, Any]:
    return {
        "slug": article.slug,
        "title": article.title,
        "description": article.description,
        "body": article.body,
        "author": {"username": author.username, "bio": author.bio},
    }


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as db:
        yield db


Db = Annotated[AsyncSession, Depends(_session)]


def build_app(sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    """The Conduit routes this test needs, each reading the database the usual ORM way."""
    app = FastAPI(title="conduit")
    app.add_middleware(RecordWork)
    app.state.sessions = sessions

    @app.get("/api/articles/feed")
    async def feed(db: Db, limit: int = 20) -> dict[str, Any]:
        """The listing done right: every author in one ``selectinload`` query."""
        query = select(Article).options(selectinload(Article.author)).order_by(Article.id)
        articles = (await db.scalars(query.limit(limit))).all()
        body = [_article_json(article, article.author) for article in articles]
        return {"articles": body, "articlesCount": len(body)}

    @app.get("/api/articles")
    async def list_articles(db: Db, limit: int = 20) -> dict[str, Any]:
        """The listing done wrong: each article's author lazy-loaded one by one (N+1)."""
        articles = (await db.scalars(select(Article).order_by(Article.id).limit(limit))).all()
        body = [
            _article_json(article, await article.awaitable_attrs.author) for article in articles
        ]
        return {"articles": body, "articlesCount": len(body)}

    @app.get("/api/articles/{slug}")
    async def get_article(db: Db, slug: str) -> dict[str, Any]:
        """One article with its author: two statements (the article, then its author)."""
        query = select(Article).options(selectinload(Article.author)).where(Article.slug == slug)
        article = (await db.scalars(query)).one_or_none()
        if article is None:
            raise HTTPException(status_code=404, detail="article not found")
        return {"article": _article_json(article, article.author)}

    @app.post("/api/articles", status_code=201)
    async def create_article(
        db: Db, payload: NewArticleRequest, authorization: Annotated[str, Header()]
    ) -> dict[str, Any]:
        """The author from the token, then the insert, in one committed transaction."""
        username = authorization.removeprefix("Token ").strip()
        async with db.begin():
            author = (await db.scalars(select(User).where(User.username == username))).one()
            new = payload.article
            article = Article(
                slug=_slugify(new.title),
                title=new.title,
                description=new.description,
                body=new.body,
                author=author,
            )
            db.add(article)
        return {"article": _article_json(article, author)}

    return app


# --- set-up and the requests --------------------------------------------------------------


async def seed(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], size: int) -> None:
    """Tables, then ``size`` authors (by literal SQL, as seed scripts do) with one article each."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        for n in range(size):
            email = f"author{n}.seed@conduit-weddings.example"
            _literals.append(email)
            await conn.exec_driver_sql(
                f"INSERT INTO users (username, email, bio) VALUES ('author{n}', '{email}', '')"
            )
    async with sessions() as db, db.begin():
        authors = (await db.scalars(select(User).order_by(User.id))).all()
        db.add_all(
            Article(
                slug=f"seeded-story-{n}",
                title=f"Seeded story {n}",
                body=f"Seeded body {n}",
                author=author,
            )
            for n, author in enumerate(authors)
        )


async def drive(app: FastAPI, size: int) -> None:
    """The warm-up request, then one request per behaviour under test."""
    _literals.extend([NEW_TITLE, NEW_BODY, _slugify(NEW_TITLE)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://conduit.test") as client:

        async def call(step: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
            headers = {STEP_HEADER: step, **kwargs.pop("headers", {})}
            response = await client.request(method, url, headers=headers, **kwargs)
            if response.status_code >= 400:
                raise RuntimeError(f"{step}: {method} {url} -> {response.status_code}")
            return response

        await call("warm_up", "GET", "/api/articles/seeded-story-0")
        await call("get_article", "GET", f"/api/articles/seeded-story-{size - 1}")
        await call(
            "create_article",
            "POST",
            "/api/articles",
            json={"article": {"title": NEW_TITLE, "description": "", "body": NEW_BODY}},
            headers={"Authorization": "Token author0"},
        )
        listing = await call("list_lazy", "GET", f"/api/articles?limit={size}")
        authors = {article["author"]["username"] for article in listing.json()["articles"]}
        if len(authors) != size:
            raise RuntimeError(f"the N+1 listing needs {size} distinct authors, got {authors}")
        await call("list_selectin", "GET", f"/api/articles/feed?limit={size}")


async def main() -> None:
    engine = create_async_engine(os.environ["CONDUIT_DATABASE_URL"])
    event.listen(engine.sync_engine, "before_cursor_execute", _on_statement)
    event.listen(engine.sync_engine, "begin", _on_begin)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    size = int(os.environ["CONDUIT_LIST_SIZE"])
    try:
        await seed(engine, sessions, size)
        await drive(build_app(sessions), size)
    finally:
        await engine.dispose()
        record = {
            "requests": [asdict(work) for work in _requests],
            "literals": _literals,
            "literals_in_sql": sorted(_literals_in_sql),
        }
        path = Path(os.environ["CONDUIT_RECORD"])
        path.write_text(json.dumps(record, indent=2), encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
