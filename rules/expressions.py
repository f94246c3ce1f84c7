"""The condition language of rule files: a tokenizer and precedence-climbing parser into rules.rule_model trees.

Nothing here evaluates text: a condition becomes a tree of Const, Name, Unary, Binary and Call
nodes that the engines interpret. From loosest to tightest binding: ``or``, ``and``, ``not``,
comparisons (``< <= > >= == !=``, never chained), ``+ -``, ``* /``, unary ``-``, then numbers,
``true``/``false``, names, calls (``abs(x)``, ``min(a, b)``, ``max(a, b)``) and parentheses.

>>> to_text(parse("night and people > 2 * (a + 1)"))
'(night and (people > (2 * (a + 1))))'
>>> check(parse("rain > 0.5"), {"rain": ExprType.NUMBER})
<ExprType.BOOLEAN: 'boolean'>
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from rules.rule_model import Binary, Call, Const, Expr, Name, Unary

MAX_LENGTH = 2000  # characters of one condition
MAX_DEPTH = 50  # levels of the parsed tree; keeps every recursive walker (here and in the engines) safe
# The parser's own recursion: a fully parenthesised tree of MAX_DEPTH levels (what to_text writes)
# needs at most four frames a level; more means redundant parentheses or a hostile input.
_MAX_FRAMES = 4 * MAX_DEPTH + 8

FUNCTIONS = {"abs": 1, "min": 2, "max": 2}  # name -> number of arguments
BUILTINS = ("day", "night")  # boolean names every condition may use (rules/schedules.py)
KEYWORDS = frozenset({"and", "or", "not", "true", "false"})
# Names a rule value or schedule must not take: they would be shadowed or unreadable in conditions.
RESERVED = frozenset({*KEYWORDS, *FUNCTIONS, *BUILTINS})
# What a rule file may name a value or schedule (the tokenizer reads longer names, but no file needs one).
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
IDENTIFIER_HELP = "letters, digits and _ (not starting with a digit, at most 63)"

ARITHMETIC = ("+", "-", "*", "/")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
LOGIC = ("and", "or")

# Binding strength of the binary operators; `not` sits between `and` and the comparisons.
_PRECEDENCE = {"or": 1, "and": 2, **dict.fromkeys(COMPARISONS, 4), "+": 5, "-": 5, "*": 6, "/": 6}
_NOT_PRECEDENCE = 3

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|!=|[-+*/<>(),])
""", re.VERBOSE)
_HINTS = {"=": "use == to compare", "&": "use and", "|": "use or", "!": "use not or !=",
          "'": "conditions have no strings", '"': "conditions have no strings"}


class ExpressionError(ValueError):
    """A condition that does not parse or type-check; the message names the position or offending part."""


class ExprType(StrEnum):
    """The static type of an expression (at run time either may also be missing)."""

    NUMBER = "number"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "number" | "name" | "op" | "end"
    text: str
    pos: int  # 1-based column, as an editor shows it


def tokenize(text: str) -> list[_Token]:
    """The tokens of a condition, ending with an "end" token; raises ExpressionError on a stray character."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            char = text[pos]
            hint = _HINTS.get(char)
            raise ExpressionError(f"unexpected character {char!r} at position {pos + 1}"
                                  + (f" ({hint})" if hint else ""))
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), pos + 1))
        pos = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _where(token: _Token) -> str:
    return "the end of the condition" if token.kind == "end" else f"{token.text!r} at position {token.pos}"


class _Parser:
    """Precedence climbing over the token list; each method consumes what it parses."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.frames = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def enter(self) -> None:
        # Count our own recursion so no input can reach Python's recursion limit.
        self.frames += 1
        if self.frames > _MAX_FRAMES:
            raise ExpressionError(f"condition nested too deeply at position {self.token.pos}: "
                                  f"at most {MAX_DEPTH} levels")

    def expression(self, min_precedence: int = 0) -> Expr:
        self.enter()
        left = self.unary(min_precedence)
        compared = False  # whether `left` is a comparison this loop built, to refuse a < b < c
        while True:
            op = self.token
            precedence = _PRECEDENCE.get(op.text) if op.kind in ("op", "name") else None
            if precedence is None or precedence < min_precedence:
                break
            if op.text in COMPARISONS and compared:
                raise ExpressionError(f"comparisons cannot be chained: {_where(op)} "
                                      "(write 'a < b and b < c')")
            self.advance()
            right = self.expression(precedence + 1)
            left = Binary(op.text, left, right)
            compared = op.text in COMPARISONS
        self.frames -= 1
        return left

    def unary(self, min_precedence: int) -> Expr:
        self.enter()
        token = self.token
        result: Expr
        if token.text == "-" and token.kind == "op":
            self.advance()
            result = Unary("neg", self.unary(_PRECEDENCE["*"] + 1))
        elif token.text == "not" and token.kind == "name":
            # `not` is an operand of and/or/not only: `a < not b` and `1 + not b` need parentheses.
            if min_precedence > _NOT_PRECEDENCE + 1:
                raise ExpressionError(f"'not' at position {token.pos} needs parentheses here: "
                                      "write '(not x)'")
            self.advance()
            result = Unary("not", self.expression(_NOT_PRECEDENCE + 1))
        else:
            result = self.primary()
        self.frames -= 1
        return result

    def primary(self) -> Expr:
        token = self.advance()
        if token.kind == "number":
            value = float(token.text)  # the token regex admits only plain decimal literals
            if not math.isfinite(value):
                raise ExpressionError(f"number out of range at position {token.pos}: {token.text[:40]!r}")
            if self.token.kind == "name" and self.token.pos == token.pos + len(token.text):
                raise ExpressionError(f"number at position {token.pos} runs into {self.token.text!r}: "
                                      "conditions take plain numbers (seconds, not '30m')")
            return Const(value)
        if token.kind == "name":
            if token.text in ("true", "false"):
                return Const(1.0 if token.text == "true" else 0.0, boolean=True)
            if token.text in KEYWORDS:
                raise ExpressionError(f"expected a value, got {_where(token)}")
            if self.token.text == "(" and self.token.kind == "op":
                return self.call(token)
            return Name(token.text)
        if token.text == "(":
            inner = self.expression()
            self.expect(")", f"missing ')' for the '(' at position {token.pos}")
            return inner
        raise ExpressionError(f"expected a number, name or '(', got {_where(token)}")

    def call(self, name: _Token) -> Expr:
        if name.text not in FUNCTIONS:
            raise ExpressionError(f"unknown function {name.text!r} at position {name.pos}; "
                                  f"known: {', '.join(sorted(FUNCTIONS))}")
        self.advance()  # the "("
        args: list[Expr] = []
        if self.token.text != ")":
            args.append(self.expression())
            while self.token.text == "," and self.token.kind == "op":
                self.advance()
                args.append(self.expression())
        self.expect(")", f"missing ')' for the call of {name.text} at position {name.pos}")
        wanted = FUNCTIONS[name.text]
        if len(args) != wanted:
            raise ExpressionError(f"{name.text}() at position {name.pos} takes {wanted} "
                                  f"argument{'s' if wanted > 1 else ''}, got {len(args)}")
        return Call(name.text, tuple(args))

    def expect(self, text: str, message: str) -> None:
        if self.token.text != text or self.token.kind != "op":
            raise ExpressionError(f"{message}, got {_where(self.token)}")
        self.advance()


def parse(text: str) -> Expr:
    """The tree of a condition; raises ExpressionError naming the position of the problem."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"condition too long: {len(text)} characters, at most {MAX_LENGTH}")
    tokens = tokenize(text)
    if tokens[0].kind == "end":
        raise ExpressionError("empty condition")
    parser = _Parser(tokens)
    tree = parser.expression()
    if parser.token.kind != "end":
        raise ExpressionError(f"unexpected {_where(parser.token)}")
    levels = depth(tree)
    if levels > MAX_DEPTH:  # a long flat chain (a + a + ...) is parsed in a loop but is still deep
        raise ExpressionError(f"condition nested too deeply: {levels} levels, at most {MAX_DEPTH}")
    return tree


def _children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, Unary):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.left, expr.right)
    if isinstance(expr, Call):
        return expr.args
    return ()


def depth(expr: Expr) -> int:
    """The number of levels of a tree (a leaf is 1); iterative, so safe on any tree."""
    deepest = 0
    stack = [(expr, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in _children(node))
    return deepest


def names_used(expr: Expr) -> set[str]:
    """Every name the expression reads: values, schedules and builtins."""
    found: set[str] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Name):
            found.add(node.name)
        stack.extend(_children(node))
    return found


def format_number(value: float) -> str:
    """A number as the parser reads it back exactly: integers without a fraction, others as repr."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def to_text(expr: Expr) -> str:
    """Canonical, fully parenthesised text; parse(to_text(t)) == t for every tree parse returns."""
    if isinstance(expr, Const):
        if expr.boolean:
            return "true" if expr.value else "false"
        return format_number(expr.value)
    if isinstance(expr, Name):
        return expr.name
    if isinstance(expr, Unary):
        return f"(-{to_text(expr.operand)})" if expr.op == "neg" else f"(not {to_text(expr.operand)})"
    if isinstance(expr, Binary):
        return f"({to_text(expr.left)} {expr.op} {to_text(expr.right)})"
    return f"{expr.fn}({', '.join(to_text(a) for a in expr.args)})"


def _show(expr: Expr) -> str:
    """A subexpression for a message: canonical text without the outer parentheses, shortened."""
    text = to_text(expr)
    if text.startswith("(") and text.endswith(")") and not isinstance(expr, Call):
        text = text[1:-1]
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _operand(expr: Expr, names: Mapping[str, ExprType], want: ExprType, where: str) -> None:
    got = check(expr, names)
    if got is not want:
        raise ExpressionError(f"expected a {want} {where}, got {got} {_show(expr)}")


def check(expr: Expr, names: Mapping[str, ExprType]) -> ExprType:
    """The type of the expression given the types of the names it may use; raises ExpressionError."""
    if isinstance(expr, Const):
        return ExprType.BOOLEAN if expr.boolean else ExprType.NUMBER
    if isinstance(expr, Name):
        if expr.name not in names:
            raise ExpressionError(f"unknown name {expr.name!r}; known: {', '.join(sorted(names))}")
        return names[expr.name]
    if isinstance(expr, Unary):
        if expr.op == "not":
            _operand(expr.operand, names, ExprType.BOOLEAN, "after 'not'")
            return ExprType.BOOLEAN
        _operand(expr.operand, names, ExprType.NUMBER, "after unary '-'")
        return ExprType.NUMBER
    if isinstance(expr, Binary):
        want = ExprType.BOOLEAN if expr.op in LOGIC else ExprType.NUMBER
        _operand(expr.left, names, want, f"on the left of {expr.op!r}")
        _operand(expr.right, names, want, f"on the right of {expr.op!r}")
        return ExprType.NUMBER if expr.op in ARITHMETIC else ExprType.BOOLEAN
    for index, arg in enumerate(expr.args):
        _operand(arg, names, ExprType.NUMBER, f"as argument {index + 1} of {expr.fn}()")
    return ExprType.NUMBER
