"""Cache commands as text (Redis, Valkey, memcached): the command kept, keys and values gone.

The contrib Redis instrumentation exports ``GET ?`` when a command is
called with its arguments apart, but ``execute_command("GET supplier:42:<email>")``
hands it one string, which it exports whole, in the span name and in
``db.statement``; ``AUTH default <password>`` likewise. Here the first word
(and the second, for container commands like ``CONFIG GET`` or ``FT.SEARCH``
subcommands) is kept if it looks like a command, and every other word is ``?``.
"""

from __future__ import annotations

import re
from typing import Final

VALUE_MARK: Final = "?"

CONTAINER_COMMANDS: Final = frozenset(
    {
        "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY",
        "MODULE", "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO", "FT.CONFIG",
        "FT.CURSOR", "JSON.DEBUG",
    }
)  # fmt: skip
"""Commands whose second word is a subcommand, not a key."""

SUBCOMMANDS: Final = frozenset(
    {
        "CACHING", "CAT", "CHANNELS", "COUNT", "COUNTKEYSINSLOT", "CREATE", "CREATECONSUMER",
        "DEL", "DELCONSUMER", "DELETE", "DELUSER", "DESTROY", "DOCS", "DOCTOR", "DRYRUN", "DUMP",
        "ENCODING", "EXISTS", "FLUSH", "FREQ", "GENPASS", "GET", "GETKEYS", "GETNAME", "GETUSER",
        "GROUPS", "HELP", "HISTORY", "ID", "IDLETIME", "INFO", "KEYSLOT", "KILL", "LATEST", "LEN",
        "LIST", "LOAD", "LOADEX", "LOG", "MALLOC-STATS", "MYID", "NODES", "NO-EVICT", "NO-TOUCH",
        "NUMPAT", "NUMSUB", "PAUSE", "PURGE", "REFCOUNT", "REPLY", "RESET", "RESETSTAT",
        "RESTORE", "REWRITE", "SAVE", "SET", "SETID", "SETINFO", "SETNAME", "SETUSER", "SHARDS",
        "SLOTS", "STATS", "STREAM", "TRACKING", "TRACKINGINFO", "UNBLOCK", "UNLOAD", "UNPAUSE",
        "USAGE", "USERS", "WHOAMI", "CONSUMERS", "SHARDCHANNELS", "SHARDNUMSUB", "LINKS",
    }
)  # fmt: skip
"""Subcommands of `CONTAINER_COMMANDS`; any other second word may be data, and is ``?``."""

_COMMAND = re.compile(r"[A-Za-z][A-Za-z0-9_.|-]{0,31}")


def command_name(text: str) -> str | None:
    """The command a cache statement or span name starts with, upper-cased; ``None`` if none."""
    words = text.split(None, 2)
    if not words or not _COMMAND.fullmatch(words[0]):
        return None
    head = words[0].upper()
    if head in CONTAINER_COMMANDS and len(words) > 1 and words[1].upper() in SUBCOMMANDS:
        return f"{head} {words[1].upper()}"
    return head


def scrub_command(text: str) -> str:
    """Each line of ``text`` as a command and one ``?`` per argument (``GET ?``, ``SET ? ? ? ?``).

    Lines, because the contrib joins a pipeline's commands with newlines.
    """
    return "\n".join(_scrub_line(line) for line in text.split("\n"))


def _scrub_line(line: str) -> str:
    name = command_name(line)
    if name is None:
        return VALUE_MARK if line.strip() else line
    arguments = len(line.split()) - len(name.split())
    return " ".join([name, *([VALUE_MARK] * arguments)])
