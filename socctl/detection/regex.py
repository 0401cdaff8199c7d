"""Rules' regular expressions run on RE2, the engine pySigma validates them with.

pySigma's default (safe) policy checks every ``|re`` value with Google RE2, which has no
backtracking; evaluating the same pattern with Python's ``re`` does backtrack, so a rule's
``(a+)+$`` over a crafted URL or user agent (attacker-controlled text) held a detection
run for minutes per row. RE2 takes linear time, accepts exactly what validation accepted,
and was faster on the shipped rules' patterns besides. Its C++ library logs a bad pattern
to stderr by itself ("E0000 ... re2.cc"): socctl reports the error, so that is off.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import re2  # type: ignore[import-untyped]
from sigma.policy import SigmaPolicy
from sigma.policy.regex_engine import RE2RegexEngine

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_INLINE = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))

error: type[Exception] = re2.error


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The compiled pattern (cached: the store's REGEXP calls it once per row)."""
    return re2.compile(pattern, _OPTIONS)


class QuietRE2Engine(RE2RegexEngine):
    """pySigma's RE2 engine without RE2's own stderr logging."""

    def compile(self, pattern: str, flags: int = 0) -> Any:
        inline = "".join(char for flag, char in _INLINE if int(flags) & int(flag))
        return compile_pattern(f"(?{inline}){pattern}" if inline else pattern)


POLICY = SigmaPolicy(regex_engine=QuietRE2Engine())
"""pySigma's safe policy, quiet: what socctl parses rules with."""
