"""SQL text without literals, and ``db.query.summary``: one linear-time lexer, stdlib only.

Query text leaves the process in telemetry, so no literal may survive: strings
in every quoting form, numbers, dollar-quoted bodies and the tail of anything
left unterminated all become ``?``. The rules are those of the OpenTelemetry
semantic conventions for ``db.query.text`` and ``db.query.summary``.

The lexer walks the text once: each token is found by a small regex anchored at
the current position (possessive quantifiers, so nothing is re-scanned) or by
``str.find`` for a closing delimiter. Where a dialect is ambiguous it redacts
more rather than less. This module imports nothing outside the standard library
because a collector's embedded interpreter loads it by file path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import ClassVar, Final, NamedTuple

MAX_QUERY_CHARS: Final = 8192
"""Longer text is cut before lexing and the result marked with ``" ..."``, so work is bounded."""

MAX_SUMMARY_CHARS: Final = 255
"""A summary is cut at the last whole part that fits."""

SPACE: Final = "space"
COMMENT: Final = "comment"
LITERAL: Final = "literal"
"""Strings, numbers, dollar-quoted bodies, implausible quoted names, unterminated tails."""
PARAM: Final = "param"
"""Bind placeholders: ``?``, ``?1``, ``$1``, ``%s``, ``%(name)s``, ``:name``, ``@p1``."""
WORD: Final = "word"
QUOTED: Final = "quoted"
"""A quoted identifier kept as written."""
PUNCT: Final = "punct"


class Token(NamedTuple):
    """One lexed piece of the text; the texts of all tokens joined give the input back."""

    kind: str
    text: str


class _Rules(NamedTuple):
    """How a dialect quotes and comments; every flag defaults to the standard SQL reading.

    A NamedTuple, not a dataclass: dataclasses look their module up in
    ``sys.modules``, which a by-path load need not fill in.
    """

    backslash_strings: bool = False
    """Every '...' and "..." honours backslash escapes (MySQL, MariaDB)."""
    hash_comments: bool = False
    """``#`` starts a comment to the end of the line."""
    double_quoted_strings: bool = False
    """``"..."`` is a string unless it stands where only a name can stand."""
    q_quotes: bool = False
    """Oracle's ``q'[...]'`` alternative quoting."""
    colon_digits: bool = False
    """``:1`` is a bind placeholder (Oracle)."""


_MYSQL: Final = _Rules(backslash_strings=True, hash_comments=True, double_quoted_strings=True)
_ORACLE: Final = _Rules(q_quotes=True, colon_digits=True)
_DIALECTS: Final[dict[str, _Rules]] = {
    "postgresql": _Rules(),
    "sqlite": _Rules(double_quoted_strings=True),
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
    "mssql": _Rules(),
    "microsoft.sql_server": _Rules(),
    "oracle": _ORACLE,
    "oracle.db": _ORACLE,
    "other_sql": _Rules(q_quotes=True),
}
_UNKNOWN: Final = _Rules(hash_comments=True, double_quoted_strings=True, q_quotes=True)
"""An unknown dialect: like other_sql, but taking every reading that removes more."""

_SPACE: Final = re.compile(r"\s+")
_WORD: Final = re.compile(r"[^\W\d][\w$]*+")
_NUMBER: Final = re.compile(r"[-+]?+(?:\d|\.\d)(?:[eE][-+]\d|[\w.])*+")
_DOLLAR_PARAM: Final = re.compile(r"\$\d++")
_DOLLAR_TAG: Final = re.compile(r"\$(?:[^\W\d]\w*+)?\$")
_COLON_NAME: Final = re.compile(r":[^\W\d][\w$]*+")
_COLON_NAME_OR_DIGITS: Final = re.compile(r":(?:[^\W\d][\w$]*+|\d++)")
_AT_NAME: Final = re.compile(r"@@?[^\W\d][\w$]*+")
_PYFORMAT: Final = re.compile(r"%(?:\(\w++\))?s")
_QMARK: Final = re.compile(r"\?\d*+")
_COMMENT_EDGE: Final = re.compile(r"/\*|\*/")
_QUOTE_STOPS: Final = {"'": re.compile(r"['\\]"), '"': re.compile(r'["\\]')}
_Q_CLOSERS: Final = {"[": "]", "(": ")", "{": "}", "<": ">"}
_STRING_PREFIXES: Final = frozenset({"E", "B", "X", "N"})
_NAME_KEYWORDS: Final = frozenset({"FROM", "JOIN", "INTO", "UPDATE", "TABLE", "INDEX", "VIEW"})
"""After these, a double-quoted text in SQLite or MySQL is a name, not a string."""
_IDENTIFIER_TEXT: Final = re.compile(r"[\w $-]{1,128}")
_INVISIBLE: Final = frozenset({SPACE, COMMENT})


def plausible_identifier(name: str) -> bool:
    """True when a quoted text reads as a name rather than as data.

    Up to 128 letters, digits, ``_``, ``$``, ``-`` and spaces, at least one
    letter and no more digits than other characters: ``Tab 3`` is a name,
    ``a@b.com`` and ``4111 1111`` are not.
    """
    if _IDENTIFIER_TEXT.fullmatch(name) is None:
        return False
    digits = sum(char.isdigit() for char in name)
    letters = sum(char.isalpha() for char in name)
    return letters > 0 and digits * 2 <= len(name) - name.count(" ")


def _rules(dialect: str) -> _Rules:
    return _DIALECTS.get(dialect.lower(), _UNKNOWN)


def _quote_end(text: str, start: int, quote: str, *, escaped: bool) -> tuple[int, bool]:
    """Index past the closing quote, and whether there was one; doubled quotes do not close."""
    stops = _QUOTE_STOPS.get(quote) if escaped else None
    position = start
    while True:
        if stops is None:
            at = text.find(quote, position)
        else:
            match = stops.search(text, position)
            at = -1 if match is None else match.start()
        if at < 0:
            return len(text), False
        if text[at] == "\\" or text.startswith(quote, at + 1):
            position = at + 2
        else:
            return at + 1, True


def _block_comment_end(text: str, start: int) -> int:
    """Index past the ``*/`` that closes a comment opened just before ``start``; they nest."""
    depth = 1
    position = start
    while True:
        match = _COMMENT_EDGE.search(text, position)
        if match is None:
            return len(text)
        position = match.end()
        depth += 1 if match.group() == "/*" else -1
        if depth == 0:
            return position


def _q_quote_end(text: str, start: int) -> int:
    """Index past an Oracle ``q'<d>...<d>'`` whose delimiter ``<d>`` is at ``start``."""
    if start >= len(text):
        return len(text)
    closer = _Q_CLOSERS.get(text[start], text[start]) + "'"
    at = text.find(closer, start + 1)
    return len(text) if at < 0 else at + 2


class _Lexer:
    """One pass over the text; a handler per first character, plain tokens otherwise."""

    __slots__ = ("position", "previous", "rules", "text")

    def __init__(self, text: str, rules: _Rules) -> None:
        self.text = text
        self.rules = rules
        self.position = 0
        self.previous: Token | None = None

    def tokens(self) -> Iterator[Token]:
        """Every token in order."""
        text = self.text
        while self.position < len(text):
            handler = self.HANDLERS.get(text[self.position])
            token = handler(self) if handler is not None else None
            if token is None:
                token = self.plain()
            if token.kind not in _INVISIBLE:
                self.previous = token
            yield token

    def take(self, kind: str, end: int) -> Token:
        """The token from the current position to ``end``, moving past it."""
        token = Token(kind, self.text[self.position : end])
        self.position = end
        return token

    def plain(self) -> Token:
        """Whitespace, a number (with its sign), a word, or one other character."""
        text, position = self.text, self.position
        char = text[position]
        # Cheap checks pick the one pattern that can match (isdecimal is \d, isalnum is \w).
        if char.isspace():
            pattern, kind = _SPACE, SPACE
        elif char.isdecimal() or char in "+-.":
            pattern, kind = _NUMBER, LITERAL
        elif char.isalnum() or char == "_":
            pattern, kind = _WORD, WORD
        else:
            return self.take(PUNCT, position + 1)
        match = pattern.match(text, position)
        if match is None:
            return self.take(PUNCT, position + 1)
        return self.word(match.end()) if kind == WORD else self.take(kind, match.end())

    def word(self, end: int) -> Token:
        """A word, or a prefixed string: ``E''``, ``B''``, ``X''``, ``N''``, ``U&''``, ``q'[]'``."""
        text, rules = self.text, self.rules
        prefix = text[self.position : end].upper()
        if text.startswith("'", end):
            if prefix in _STRING_PREFIXES:
                escaped = prefix == "E" or rules.backslash_strings
                return self.take(LITERAL, _quote_end(text, end + 1, "'", escaped=escaped)[0])
            if prefix in {"Q", "NQ"} and rules.q_quotes:
                return self.take(LITERAL, _q_quote_end(text, end + 1))
        if prefix == "U" and text.startswith("&'", end):
            escaped = rules.backslash_strings
            return self.take(LITERAL, _quote_end(text, end + 2, "'", escaped=escaped)[0])
        if prefix == "U" and text.startswith('&"', end):
            return self.double_quoted(end + 1)
        return self.take(WORD, end)

    def single_quote(self) -> Token:
        """A '...' string; in MySQL backslashes escape."""
        escaped = self.rules.backslash_strings
        return self.take(LITERAL, _quote_end(self.text, self.position + 1, "'", escaped=escaped)[0])

    def double_quote(self) -> Token:
        """A "..." name or string."""
        return self.double_quoted(self.position)

    def double_quoted(self, quote_at: int) -> Token:
        """Kept only if it reads as a name and, where "..." can be a string, stands as one."""
        rules = self.rules
        escaped = rules.backslash_strings
        end, closed = _quote_end(self.text, quote_at + 1, '"', escaped=escaped)
        keep = (
            closed
            and plausible_identifier(self.text[quote_at + 1 : end - 1])
            and (not rules.double_quoted_strings or self.name_position(end))
        )
        return self.take(QUOTED if keep else LITERAL, end)

    def name_position(self, end: int) -> bool:
        """True after FROM, JOIN, INTO, UPDATE, TABLE, INDEX, VIEW, or next to a ``.``."""
        if self.text.startswith(".", end):
            return True
        previous = self.previous
        if previous is None:
            return False
        return previous.text == "." or (
            previous.kind == WORD and previous.text.upper() in _NAME_KEYWORDS
        )

    def backtick(self) -> Token:
        """A `...` name, kept; unterminated, it swallows the rest."""
        end, closed = _quote_end(self.text, self.position + 1, "`", escaped=False)
        return self.take(QUOTED if closed else LITERAL, end)

    def line_comment(self) -> Token:
        """To the end of the line; the newline stays."""
        at = self.text.find("\n", self.position)
        return self.take(COMMENT, len(self.text) if at < 0 else at)

    def dash(self) -> Token | None:
        """``--`` comment; otherwise a sign or an operator."""
        return self.line_comment() if self.text.startswith("--", self.position) else None

    def hash(self) -> Token | None:
        """``#`` comment in MySQL; an operator elsewhere."""
        return self.line_comment() if self.rules.hash_comments else None

    def slash(self) -> Token | None:
        """A nesting ``/* */`` comment, in every dialect (it removes more)."""
        if not self.text.startswith("/*", self.position):
            return None
        return self.take(COMMENT, _block_comment_end(self.text, self.position + 2))

    def dollar(self) -> Token | None:
        """``$1`` placeholder, or a ``$tag$...$tag$`` body."""
        text, position = self.text, self.position
        match = _DOLLAR_PARAM.match(text, position)
        if match is not None:
            return self.take(PARAM, match.end())
        match = _DOLLAR_TAG.match(text, position)
        if match is None:
            return None
        tag = match.group()
        at = text.find(tag, match.end())
        return self.take(LITERAL, len(text) if at < 0 else at + len(tag))

    def colon(self) -> Token | None:
        """``:name`` placeholder, not the second colon of ``::`` nor one glued to a word."""
        text, position = self.text, self.position
        if position and (text[position - 1] in ":_" or text[position - 1].isalnum()):
            return None
        pattern = _COLON_NAME_OR_DIGITS if self.rules.colon_digits else _COLON_NAME
        match = pattern.match(text, position)
        return None if match is None else self.take(PARAM, match.end())

    def at(self) -> Token | None:
        """``@p1`` placeholder or variable; ``@@name`` is a system variable, kept as a word."""
        match = _AT_NAME.match(self.text, self.position)
        if match is None:
            return None
        system = self.text.startswith("@@", self.position)
        return self.take(WORD if system else PARAM, match.end())

    def percent(self) -> Token | None:
        """``%s`` and ``%(name)s`` placeholders."""
        match = _PYFORMAT.match(self.text, self.position)
        return None if match is None else self.take(PARAM, match.end())

    def question(self) -> Token:
        """``?`` and ``?1`` placeholders."""
        match = _QMARK.match(self.text, self.position)
        return self.take(PARAM, self.position + 1 if match is None else match.end())

    HANDLERS: ClassVar[dict[str, Callable[[_Lexer], Token | None]]] = {
        "'": single_quote,
        '"': double_quote,
        "`": backtick,
        "-": dash,
        "#": hash,
        "/": slash,
        "$": dollar,
        ":": colon,
        "@": at,
        "%": percent,
        "?": question,
    }


def tokenize(text: str, *, dialect: str = "other_sql") -> Iterator[Token]:
    """The tokens of ``text`` in order, in time linear in its length.

    No length limit is applied here: callers cut long text first (`MAX_QUERY_CHARS`).
    """
    return _Lexer(text, _rules(dialect)).tokens()


def _redact(text: str, dialect: str) -> tuple[str, int]:
    """The text with literals as ``?`` and comments gone, and how many literals went."""
    parts: list[str] = []
    literals = 0
    for kind, value in tokenize(text[:MAX_QUERY_CHARS], dialect=dialect):
        if kind == LITERAL:
            parts.append("?")
            literals += 1
        elif kind != COMMENT:
            parts.append(value)
    if len(text) > MAX_QUERY_CHARS:
        parts.append(" ...")
    return "".join(parts), literals


def sanitize_sql(text: str, *, dialect: str = "other_sql") -> str:
    """``text`` with every literal as ``?`` and comments removed; all else exactly as written.

    ``dialect`` is a ``db.system.name`` value; unknown ones get the reading
    that removes the most.
    """
    return _redact(text, dialect)[0]


def redacted_literals(text: str, *, dialect: str = "other_sql") -> int:
    """How many literals `sanitize_sql` replaces in ``text``, for redaction counters."""
    return _redact(text, dialect)[1]


_QUERY_OPS: Final = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE"}
)
_NESTED_WRITES: Final = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})
_OBJECT_OPS: Final = frozenset({"CREATE", "ALTER", "DROP", "TRUNCATE", "LOCK"})
_NAMED_OPS: Final = frozenset({"CALL", "EXEC", "EXECUTE", "COPY"})
_MAINTENANCE_OPS: Final = frozenset({"VACUUM", "ANALYZE", "ANALYSE"})
_SIMPLE_OPS: Final = frozenset(
    {
        "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "SHOW", "GRANT", "REVOKE",
        "LISTEN", "UNLISTEN", "NOTIFY", "PRAGMA", "START", "END", "ABORT", "RESET", "USE",
    }
)  # fmt: skip
_EXPLAINABLE: Final = _QUERY_OPS | {"WITH", "CREATE", "EXECUTE"}
_TARGET_KEYWORDS: Final = frozenset({"FROM", "JOIN", "INTO", "USING"})
_DDL_MODIFIERS: Final = frozenset(
    {
        "OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "MATERIALIZED", "UNLOGGED", "GLOBAL",
        "LOCAL", "VIRTUAL", "RECURSIVE", "CLUSTERED", "NONCLUSTERED", "FOREIGN",
    }
)  # fmt: skip
_NAMED_OBJECTS: Final = frozenset(
    {
        "TABLE", "TABLES", "INDEX", "VIEW", "SEQUENCE", "SCHEMA", "DATABASE", "FUNCTION",
        "PROCEDURE", "TRIGGER", "TYPE", "EXTENSION", "DOMAIN", "TABLESPACE",
    }
)  # fmt: skip
_DDL_OBJECTS: Final = _NAMED_OBJECTS | {"USER", "ROLE", "LOGIN", "GROUP"}
"""Users and roles are named by people's names, so they get no target."""
_NAME_PREFIXES: Final = frozenset(
    {
        "ONLY", "IF", "NOT", "EXISTS", "CONCURRENTLY", "LATERAL", "LOW_PRIORITY", "DELAYED",
        "HIGH_PRIORITY", "IGNORE", "OR", "ROLLBACK", "ABORT", "FAIL", "REPLACE",
    }
)  # fmt: skip
_MAINTENANCE_OPTIONS: Final = frozenset(
    {"FULL", "FREEZE", "VERBOSE", "ANALYZE", "ANALYSE", "TABLE", "LOCAL", "NO_WRITE_TO_BINLOG"}
)
_CLAUSE_WORDS: Final = frozenset(
    {
        "AS", "WHERE", "ON", "USING", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS",
        "NATURAL", "OUTER", "STRAIGHT_JOIN", "GROUP", "ORDER", "LIMIT", "OFFSET", "FETCH",
        "HAVING", "WINDOW", "UNION", "EXCEPT", "INTERSECT", "MINUS", "SET", "VALUES", "VALUE",
        "SELECT", "RETURNING", "FOR", "INTO", "FROM", "DEFAULT", "WITH", "PARTITION",
        "TABLESAMPLE", "USE", "FORCE", "OUTPUT", "OPTION", "QUALIFY", "WHEN", "AND", "OR",
        "NOT", "IN", "IS", "LIKE", "BETWEEN", "THEN", "ELSE", "END", "CASE", "DO", "APPLY",
    }
)  # fmt: skip
"""Words that end a table name's clause: never taken as a name or an alias."""


def _unquote(quoted: str) -> str:
    """The text inside a quoted name (``"x"``, `` `x` ``, ``U&"x"``)."""
    return quoted[quoted.index(quoted[-1]) + 1 : -1]


class _Summary:
    """Operations and table names, walking the visible tokens once.

    A frame per open operation records the parenthesis depth it opened at, so
    ``FROM`` inside ``EXTRACT(YEAR FROM x)`` is not taken for a table.
    """

    __slots__ = ("depth", "frames", "index", "parts", "tokens", "with_statement")

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0
        self.frames: list[tuple[int, bool]] = []
        self.parts: list[str] = []
        self.with_statement = False

    def run(self) -> list[str]:
        """The summary's parts; none when the first statement is not recognised."""
        if not self.statement():
            return []
        while self.index < len(self.tokens):
            self.step()
        return self.parts

    def peek(self) -> Token | None:
        """The current token, if any."""
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def peek_word(self) -> str:
        """The current token upper-cased if it is a word, else ``""``."""
        token = self.peek()
        return token.text.upper() if token is not None and token.kind == WORD else ""

    def peek_text(self) -> str:
        """The current token's text, or ``""`` at the end."""
        token = self.peek()
        return "" if token is None else token.text

    def statement(self) -> bool:
        """Start a statement at the current token; False if its first word is no operation."""
        while self.peek_text() == "(":
            self.depth += 1
            self.index += 1
        token = self.peek()
        if token is None or token.kind != WORD:
            return False
        opener = self.STATEMENTS.get(token.text.upper())
        if opener is None:
            return False
        self.index += 1
        opener(self, token)
        return True

    def step(self) -> None:
        """Take one token inside a statement."""
        token = self.tokens[self.index]
        self.index += 1
        if token.kind == WORD:
            self.word(token)
        elif token.text == "(":
            self.depth += 1
        elif token.text == ")":
            self.depth = max(self.depth - 1, 0)
            while self.frames and self.frames[-1][0] > self.depth:
                self.frames.pop()
        elif token.text == ";":
            self.depth = 0
            self.frames.clear()
            self.with_statement = False
            if not self.statement():
                self.skip_statement()

    def word(self, token: Token) -> None:
        """A nested operation, or a keyword before table names."""
        upper = token.text.upper()
        before = self.tokens[self.index - 2].text.upper() if self.index >= 2 else ""
        if upper == "SELECT" or (
            upper in _NESTED_WRITES and (before == "(" or (before == ")" and self.with_statement))
        ):
            self.query(token)
        elif upper in _TARGET_KEYWORDS and self.in_query() and before != "DISTINCT":
            self.names(many=upper in {"FROM", "USING"})

    def in_query(self) -> bool:
        """True when the innermost open operation reads tables at this depth."""
        return bool(self.frames) and self.frames[-1] == (self.depth, True)

    def skip_statement(self) -> None:
        """Move to the next ``;``."""
        while self.index < len(self.tokens) and self.tokens[self.index].text != ";":
            self.index += 1

    def skip_group(self) -> None:
        """Move past a parenthesised group that starts at the current token."""
        depth = 0
        while self.index < len(self.tokens):
            text = self.tokens[self.index].text
            self.index += 1
            depth += (text == "(") - (text == ")")
            if depth <= 0:
                return

    def query(self, token: Token) -> None:
        """SELECT, INSERT, UPDATE, DELETE, MERGE, UPSERT, REPLACE: tables follow FROM and INTO."""
        self.parts.append(token.text)
        self.frames.append((self.depth, True))
        if token.text.upper() == "UPDATE":
            self.names(many=True)

    def with_clause(self, _token: Token) -> None:
        """WITH names no operation itself: its CTEs and main statement do."""
        self.with_statement = True

    def object_statement(self, token: Token) -> None:
        """CREATE/ALTER/DROP [modifiers] TABLE name, TRUNCATE [TABLE] name, LOCK [TABLE] name."""
        self.parts.append(token.text)
        named = token.text.upper() in {"TRUNCATE", "LOCK"}
        while self.peek_word() in _DDL_MODIFIERS:
            self.parts.append(self.tokens[self.index].text)
            self.index += 1
        kind = self.peek_word()
        if kind in _DDL_OBJECTS:
            self.parts.append(self.tokens[self.index].text)
            self.index += 1
            named = kind in _NAMED_OBJECTS
        if named:
            self.names(many=True)
        self.frames.append((self.depth, False))

    def named_statement(self, token: Token) -> None:
        """CALL/EXEC/EXECUTE procedure, COPY table; a COPY (SELECT ...) speaks for itself."""
        self.parts.append(token.text)
        self.names(many=False)
        self.frames.append((self.depth, False))

    def maintenance(self, token: Token) -> None:
        """VACUUM/ANALYZE [options] [table, ...]."""
        self.parts.append(token.text)
        while True:
            if self.peek_word() in _MAINTENANCE_OPTIONS:
                self.index += 1
            elif self.peek_text() == "(":
                self.skip_group()
            else:
                break
        self.names(many=True)
        self.frames.append((self.depth, False))

    def explain(self, token: Token) -> None:
        """EXPLAIN [options] followed by the explained statement's own summary."""
        self.parts.append(token.text)
        while self.index < len(self.tokens) and self.tokens[self.index].text != ";":
            if self.peek_word() in _EXPLAINABLE:
                self.statement()
                return
            self.index += 1

    def simple(self, token: Token) -> None:
        """Transaction control, settings, grants: the operation alone."""
        self.parts.append(token.text)
        self.skip_statement()

    def names(self, *, many: bool) -> None:
        """Table names (with aliases skipped), a comma list when ``many``."""
        while True:
            while self.peek_word() in _NAME_PREFIXES:
                self.index += 1
            name = self.name()
            if name is None:
                return
            if name:
                self.parts.append(name)
            self.skip_alias()
            if not many or self.peek_text() != ",":
                return
            self.index += 1

    def name(self) -> str | None:
        """A dotted name; ``""`` when a part of it is left out, None when there is none."""
        pieces: list[str] = []
        while True:
            piece = self.name_part()
            if piece is None:
                break
            pieces.append(piece)
            if self.peek_text() != ".":
                break
            self.index += 1
        if not pieces:
            return None
        return ".".join(pieces) if all(pieces) else ""

    def name_part(self) -> str | None:
        """A word, a plausible quoted name (``""`` if implausible), or a ``[bracketed name]``."""
        token = self.peek()
        if token is None:
            return None
        if token.kind == WORD and token.text.upper() not in _CLAUSE_WORDS:
            self.index += 1
            return token.text
        if token.kind == QUOTED:
            self.index += 1
            return token.text if plausible_identifier(_unquote(token.text)) else ""
        if token.text == "[":
            return self.bracket_name()
        return None

    def bracket_name(self) -> str | None:
        """``[Order Details]``: words only between the brackets."""
        end = self.index + 1
        while end < len(self.tokens) and self.tokens[end].kind == WORD:
            end += 1
        if end == self.index + 1 or end >= len(self.tokens) or self.tokens[end].text != "]":
            return None
        words = [token.text for token in self.tokens[self.index + 1 : end]]
        self.index = end + 1
        return "[" + " ".join(words) + "]"

    def skip_alias(self) -> None:
        """``AS alias`` or a bare alias after a table name."""
        if self.peek_word() == "AS":
            self.index += 1
        token = self.peek()
        if token is not None and (
            token.kind == QUOTED or (token.kind == WORD and token.text.upper() not in _CLAUSE_WORDS)
        ):
            self.index += 1

    STATEMENTS: ClassVar[dict[str, Callable[[_Summary, Token], None]]] = {
        **dict.fromkeys(_QUERY_OPS, query),
        "WITH": with_clause,
        **dict.fromkeys(_OBJECT_OPS, object_statement),
        **dict.fromkeys(_NAMED_OPS, named_statement),
        **dict.fromkeys(_MAINTENANCE_OPS, maintenance),
        "EXPLAIN": explain,
        **dict.fromkeys(_SIMPLE_OPS, simple),
    }


def query_summary(text: str, *, dialect: str = "other_sql") -> str:
    """``db.query.summary``: operations and table names, ``""`` when no operation is recognised.

    It holds words and plausible quoted names only, never a literal, and at
    most `MAX_SUMMARY_CHARS` characters, cut between parts.
    """
    visible = [
        token
        for token in tokenize(text[:MAX_QUERY_CHARS], dialect=dialect)
        if token.kind not in _INVISIBLE
    ]
    summary = ""
    for part in _Summary(visible).run():
        joined = f"{summary} {part}" if summary else part
        if len(joined) > MAX_SUMMARY_CHARS:
            break
        summary = joined
    return summary
