"""A hand-written Pratt (precedence-climbing) parser of ``$filter`` and ``$orderby`` over the lexer's
tokens.

Precedence, loosest first (OData 4.0 Part 2, 5.1.1 "Operator Precedence"): ``or``; ``and``;
equality (``eq ne``); relational (``gt ge lt le in``); additive (``add sub``); multiplicative
(``mul div divby mod``); unary (``not``, ``-``); primary (literals, property paths, calls, parentheses).
Binary operators are left-associative. Operators, ``true``/``false``/``null`` and function names are
matched without regard to case (OData 4.01 allows it; property names stay case-sensitive).

Hostile input cannot exhaust the stack: the text is at most ``MAX_LENGTH`` characters, parentheses,
calls and unary operators nest at most ``MAX_NESTING`` deep (the parser recurses only there and once
per precedence level), and the finished tree is at most ``MAX_TREE_DEPTH`` deep, so that evaluators
may recurse over it.
"""

from __future__ import annotations

import datetime as dt

from api.sta.query.ast import (
    COMPARISONS,
    LOGICAL,
    Binary,
    BinaryOp,
    Call,
    Literal,
    Node,
    NotImplementedFeature,
    OrderItem,
    Property,
    QueryError,
    Unary,
    at,
    quote,
)
from api.sta.query.functions import FUNCTIONS, UNSUPPORTED_FUNCTIONS
from api.sta.query.lexer import Kind, Token, tokenize

MAX_LENGTH = 8192
MAX_NESTING = 50
MAX_TREE_DEPTH = 200
MAX_IN_LIST = 200

_BINDING: dict[str, int] = {"or": 1, "and": 2, "eq": 3, "ne": 3, "gt": 4, "ge": 4, "lt": 4, "le": 4, "in": 4,
                            "add": 5, "sub": 5, "mul": 6, "div": 6, "divby": 6, "mod": 6}
_UNARY = 7
_KEYWORDS = {"true": True, "false": False, "null": None}
_NOT_IMPLEMENTED_OPERATORS = {"has": "the 'has' operator (enumerations)"}


def parse_filter(text: str) -> Node:
    """The tree of a ``$filter`` expression; QueryError (with the character position) when it is not one."""
    parser = _Parser(text)
    start = parser.peek()
    node = parser.expression(0)
    parser.expect_end()
    if _kind(node) == "other":
        raise QueryError(f"$filter must be a boolean expression {at(text, start.pos)}", start.pos)
    _check_tree_depth(node)
    return node


def parse_orderby(text: str) -> tuple[OrderItem, ...]:
    """The keys of an ``$orderby``: ``expr [asc|desc]`` separated by commas."""
    parser = _Parser(text)
    items: list[OrderItem] = []
    while True:
        expr = parser.expression(0)
        _check_tree_depth(expr)
        descending = False
        tok = parser.peek()
        if tok.kind is Kind.IDENT and str(tok.value).lower() in ("asc", "desc"):
            descending = str(parser.next().value).lower() == "desc"
        tok = parser.next()
        items.append(OrderItem(expr, descending))
        if tok.kind is Kind.EOF:
            return tuple(items)
        if tok.kind is not Kind.COMMA:
            raise QueryError(f"expected ',', 'asc', 'desc' or the end {at(text, tok.pos)}", tok.pos)


def _kind(node: Node) -> str:
    """'boolean', 'other' or 'unknown' (a property, null): enough to refuse ``1 and 2`` while parsing."""
    if isinstance(node, Literal):
        if node.value is None:
            return "unknown"
        return "boolean" if isinstance(node.value, bool) else "other"
    if isinstance(node, Property):
        return "unknown"
    if isinstance(node, Call):
        result = FUNCTIONS[node.name][2]
        return "unknown" if result is None else ("boolean" if result == "boolean" else "other")
    if isinstance(node, Unary):
        return "boolean" if node.op == "not" else "other"
    return "boolean" if node.op in COMPARISONS or node.op in LOGICAL else "other"


def _check_tree_depth(node: Node) -> None:
    """Refuse trees deeper than MAX_TREE_DEPTH (long left-deep ``or`` chains), measured without recursion."""
    stack: list[tuple[Node, int]] = [(node, 1)]
    while stack:
        n, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            raise QueryError(f"expression too deeply nested (more than {MAX_TREE_DEPTH} levels)")
        if isinstance(n, Call):
            stack.extend((a, depth + 1) for a in n.args)
        elif isinstance(n, Unary):
            stack.append((n.operand, depth + 1))
        elif isinstance(n, Binary):
            stack.extend(((n.left, depth + 1), (n.right, depth + 1)))


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_LENGTH:
            raise QueryError(f"expression too long ({len(text)} characters, at most {MAX_LENGTH})")
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.nesting = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind is not Kind.EOF:
            self.i += 1
        return tok

    def error(self, message: str, tok: Token) -> QueryError:
        return QueryError(f"{message} {at(self.text, tok.pos)}", tok.pos)

    def expect(self, kind: Kind, what: str) -> Token:
        tok = self.next()
        if tok.kind is not kind:
            raise self.error(f"expected {what}, found {_describe(tok)}", tok)
        return tok

    def expect_end(self) -> None:
        tok = self.peek()
        if tok.kind is not Kind.EOF:
            raise self.error(f"expected an operator or the end, found {_describe(tok)}", tok)

    def nest(self, tok: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(f"expression nested more than {MAX_NESTING} deep", tok)

    def expression(self, min_binding: int) -> Node:
        left = self.prefix()
        while True:
            tok = self.peek()
            op = str(tok.value).lower() if tok.kind is Kind.IDENT else ""
            if op in _NOT_IMPLEMENTED_OPERATORS:
                raise NotImplementedFeature(f"$filter: {_NOT_IMPLEMENTED_OPERATORS[op]} is not implemented")
            binding = _BINDING.get(op)
            if binding is None or binding <= min_binding:
                return left
            self.next()
            if op == "in":
                left = self.in_list(left, tok)
                continue
            right = self.expression(binding)
            name: BinaryOp = "div" if op == "divby" else op  # type: ignore[assignment]
            if op in LOGICAL:
                for side in (left, right):
                    if _kind(side) == "other":
                        raise self.error(f"'{op}' needs boolean operands", tok)
            left = Binary(name, left, right)

    def in_list(self, left: Node, tok: Token) -> Node:
        """``x in (a, b)``: the same as ``x eq a or x eq b`` (OData 4.01)."""
        self.nest(self.expect(Kind.LPAREN, "'(' after 'in'"))
        items = [self.expression(0)]
        while self.peek().kind is Kind.COMMA:
            self.next()
            items.append(self.expression(0))
            if len(items) > MAX_IN_LIST:
                raise self.error(f"'in' list longer than {MAX_IN_LIST}", tok)
        self.expect(Kind.RPAREN, "',' or ')' in the 'in' list")
        self.nesting -= 1
        node: Node = Binary("eq", left, items[0])
        for item in items[1:]:
            node = Binary("or", node, Binary("eq", left, item))
        return node

    def prefix(self) -> Node:
        tok = self.next()
        if tok.kind in (Kind.NUMBER, Kind.STRING, Kind.LITERAL):
            return Literal(tok.value)
        if tok.kind is Kind.LPAREN:
            self.nest(tok)
            inner = self.expression(0)
            self.expect(Kind.RPAREN, "')'")
            self.nesting -= 1
            return inner
        if tok.kind is Kind.MINUS:
            self.nest(tok)
            operand = self.expression(_UNARY)
            self.nesting -= 1
            if isinstance(operand, Literal) and _negatable(operand.value):
                return Literal(-operand.value)  # type: ignore[operator]
            if _kind(operand) == "boolean":
                raise self.error("'-' needs a number or duration", tok)
            return Unary("-", operand)
        if tok.kind is Kind.IDENT:
            return self.identifier(tok)
        raise self.error(f"expected an expression, found {_describe(tok)}", tok)

    def identifier(self, tok: Token) -> Node:
        name = str(tok.value)
        lower = name.lower()
        following = self.peek().kind
        if lower == "not" and following is not Kind.SLASH:  # 'not(a)' too: not is no function
            self.nest(tok)
            operand = self.expression(_UNARY)
            self.nesting -= 1
            if _kind(operand) == "other":
                raise self.error("'not' needs a boolean operand", tok)
            return Unary("not", operand)
        if lower in _KEYWORDS and following is not Kind.SLASH:
            return Literal(_KEYWORDS[lower])
        if lower in _BINDING and following is not Kind.SLASH:
            raise self.error(f"expected an expression, found the operator '{lower}'", tok)
        if following is Kind.LPAREN:
            return self.call(tok, lower)
        path = [name]
        while self.peek().kind is Kind.SLASH:
            self.next()
            segment = self.expect(Kind.IDENT, "a property name after '/'")
            if self.peek().kind is Kind.LPAREN:
                if str(segment.value).lower() in ("any", "all"):
                    raise NotImplementedFeature("$filter: the lambda operators any() and all() are not implemented")
                raise self.error("a function call cannot follow '/'", segment)
            path.append(str(segment.value))
        return Property(tuple(path))

    def call(self, tok: Token, name: str) -> Node:
        if name in UNSUPPORTED_FUNCTIONS:
            raise NotImplementedFeature(f"$filter: the function {name}() is not implemented")
        if name not in FUNCTIONS:
            raise self.error(f"unknown function {quote(str(tok.value))}", tok)
        self.nest(self.next())
        args: list[Node] = []
        if self.peek().kind is not Kind.RPAREN:
            args.append(self.expression(0))
            while self.peek().kind is Kind.COMMA:
                self.next()
                args.append(self.expression(0))
        self.expect(Kind.RPAREN, f"',' or ')' in the arguments of {name}()")
        self.nesting -= 1
        low, high, _, _ = FUNCTIONS[name]
        if not low <= len(args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise self.error(f"{name}() takes {count} argument{'s' if high != 1 else ''}, got {len(args)}", tok)
        return Call(name, tuple(args))


def _negatable(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) or isinstance(value, dt.timedelta)


def _describe(tok: Token) -> str:
    if tok.kind is Kind.EOF:
        return "the end of input"
    if tok.kind is Kind.IDENT:
        return quote(str(tok.value))
    if tok.kind in (Kind.STRING, Kind.NUMBER, Kind.LITERAL):
        return "a literal"
    return str(tok.kind)
