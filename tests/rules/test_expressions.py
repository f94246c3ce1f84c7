"""The condition language: precedence, syntax errors, type checking, limits, and text round trips."""

from __future__ import annotations

import contextlib
import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import expressions
from rules.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    ExpressionError,
    ExprType,
    check,
    depth,
    format_number,
    names_used,
    parse,
    to_text,
)
from rules.rule_model import Binary, Call, Const, Expr, Name, Unary

FAST = settings(max_examples=300, derandomize=True, database=None, deadline=None)
N, B = ExprType.NUMBER, ExprType.BOOLEAN
NAMES = {"rain": N, "people": N, "a": N, "b": N, "c": N, "evening": B, "night": B, "day": B, "p": B, "q": B}

PRECEDENCE = [
    ("1 + 2 * 3", "(1 + (2 * 3))"),
    ("(1 + 2) * 3", "((1 + 2) * 3)"),
    ("a - b - c", "((a - b) - c)"),  # left-associative
    ("a / b / c", "((a / b) / c)"),
    ("a - b + c", "((a - b) + c)"),
    ("-a * b", "((-a) * b)"),  # unary minus binds tighter than *
    ("-a - -b", "((-a) - (-b))"),
    ("- - a", "(-(-a))"),
    ("a * -b", "(a * (-b))"),
    ("a + b < c * 2", "((a + b) < (c * 2))"),
    ("p or q and evening", "(p or (q and evening))"),
    ("p and q or evening", "((p and q) or evening)"),
    ("not p and q", "((not p) and q)"),
    ("not p or not q", "((not p) or (not q))"),
    ("not a < b", "(not (a < b))"),  # not is looser than comparisons, as in Python
    ("not not p", "(not (not p))"),
    ("p and not q", "(p and (not q))"),
    ("night and people > 0", "(night and (people > 0))"),
    ("a == b and b != c", "((a == b) and (b != c))"),
    ("(a < b) == (b < c)", "((a < b) == (b < c))"),  # parenthesised comparisons may be compared
    ("abs(a - b) >= max(1, min(a, 2))", "(abs((a - b)) >= max(1, min(a, 2)))"),
    ("min(a,b)", "min(a, b)"),
    ("true", "true"),
    ("false or p", "(false or p)"),
    ("0.5", "0.5"),
    ("1.50", "1.5"),
    ("2.", "2"),
    (".25", "0.25"),
    ("1e3", "1000"),
    ("1E-2", "0.01"),
    ("1e20", "1e+20"),
    ("  rain\t>\n0.5 ", "(rain > 0.5)"),
    ("a<=b", "(a <= b)"),
]


@pytest.mark.parametrize(("text", "canonical"), PRECEDENCE, ids=[t for t, _ in PRECEDENCE])
def test_precedence_and_canonical_text(text: str, canonical: str) -> None:
    tree = parse(text)
    assert to_text(tree) == canonical
    assert parse(canonical) == tree


def test_trees_are_rule_model_nodes() -> None:
    assert parse("not -x + 1 > abs(y) and true") == Binary(
        "and",
        Unary("not", Binary(">", Binary("+", Unary("neg", Name("x")), Const(1.0)), Call("abs", (Name("y"),)))),
        Const(1.0, boolean=True),
    )
    assert parse("false") == Const(0.0, boolean=True)


SYNTAX_ERRORS = [
    ("", "empty condition"),
    ("   ", "empty condition"),
    ("a < b < c", "comparisons cannot be chained: '<' at position 7 (write 'a < b and b < c')"),
    ("a == b != c", "comparisons cannot be chained: '!=' at position 8"),
    ("a < not b", "'not' at position 5 needs parentheses here: write '(not x)'"),
    ("1 + not p", "'not' at position 5 needs parentheses here"),
    ("- not p", "'not' at position 3 needs parentheses here"),
    ("(a", "missing ')' for the '(' at position 1, got the end of the condition"),
    ("(a b", "missing ')' for the '(' at position 1, got 'b' at position 4"),
    ("a)", "unexpected ')' at position 2"),
    ("a b", "unexpected 'b' at position 3"),
    ("a +", "expected a number, name or '(', got the end of the condition"),
    ("* a", "expected a number, name or '(', got '*' at position 1"),
    ("a and or b", "expected a value, got 'or' at position 7"),
    ("not", "expected a number, name or '(', got the end of the condition"),
    ("foo(1)", "unknown function 'foo' at position 1; known: abs, max, min"),
    ("min(1)", "min() at position 1 takes 2 arguments, got 1"),
    ("abs(1, 2)", "abs() at position 1 takes 1 argument, got 2"),
    ("max()", "max() at position 1 takes 2 arguments, got 0"),
    ("min(1, 2", "missing ')' for the call of min at position 1, got the end of the condition"),
    ("a = b", "unexpected character '=' at position 3 (use == to compare)"),
    ("a && b", "unexpected character '&' at position 3 (use and)"),
    ("a || b", "unexpected character '|' at position 3 (use or)"),
    ("!a", "unexpected character '!' at position 1 (use not or !=)"),
    ("a ^ b", "unexpected character '^' at position 3"),
    ("a % b", "unexpected character '%' at position 3"),
    ("a ** b", "expected a number, name or '(', got '*' at position 4"),
    ("silence > 30m", "number at position 11 runs into 'm': conditions take plain numbers (seconds, not '30m')"),
    ("1e999 > a", "number out of range at position 1: '1e999'"),
    ("9" * 400, "number out of range at position 1"),
    ("rain > 'x'", "unexpected character \"'\" at position 8 (conditions have no strings)"),
    ("régen > 1", "unexpected character 'é' at position 2"),
    ("a > 1;", "unexpected character ';' at position 6"),
    ("a.b", "unexpected character '.' at position 2"),
    ("[1]", "unexpected character '['"),
    ("lambda: 1", "unexpected character ':' at position 7"),
    ("x if p else y", "unexpected 'if' at position 3"),
]


@pytest.mark.parametrize(("text", "message"), SYNTAX_ERRORS, ids=[t[:30] for t, _ in SYNTAX_ERRORS])
def test_syntax_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert message in str(info.value)


MALICIOUS = [
    "__import__('os').system('rm -rf /')",
    "__import__(os)",
    "eval(1)",
    "open(1)",
    "().__class__.__bases__[0]",
    "a\x00b",
    "\u202e a > 1",  # right-to-left override
    "a > 1 # comment",
    "\ufeffa > 1",
]


@pytest.mark.parametrize("text", MALICIOUS, ids=[repr(t)[:30] for t in MALICIOUS])
def test_code_is_never_run_only_refused(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse(text)


def test_length_is_limited() -> None:
    ok = "a" * MAX_LENGTH
    assert parse(ok) == Name(ok)
    with pytest.raises(ExpressionError, match=f"condition too long: {MAX_LENGTH + 1} characters, at most {MAX_LENGTH}"):
        parse("a" * (MAX_LENGTH + 1))


@pytest.mark.parametrize("text", [
    "(" * 999 + "a" + ")" * 1000,
    "(" * 1990,
    "-" * 1999 + "a",
    "not " * 499 + "p",
    "abs(" * 399 + "a" + ")" * 399,
    "+".join("a" * 999),  # a flat chain: parsed in a loop, but the tree is deep
    "a" + " and p" * 300,
    "min(a, " * 249 + "a" + ")" * 249,
])
def test_deep_nesting_is_an_expression_error_not_a_recursion_error(text: str) -> None:
    assert len(text) <= MAX_LENGTH
    with pytest.raises(ExpressionError, match=f"nested too deeply.*at most {MAX_DEPTH}"):
        parse(text)


def _chain(levels: int) -> Expr:
    """A tree of exactly `levels` levels alternating unary, binary and call nodes."""
    tree: Expr = Name("a")
    for i in range(levels - 1):
        tree = (Unary("neg", tree), Binary("+", Const(1.0), tree), Call("abs", (tree,)), Unary("not", tree))[i % 4]
    return tree


def test_a_tree_at_the_depth_limit_round_trips_through_its_text() -> None:
    for levels in (MAX_DEPTH - 1, MAX_DEPTH):
        tree = _chain(levels)
        assert depth(tree) == levels
        assert parse(to_text(tree)) == tree
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse(to_text(_chain(MAX_DEPTH + 1)))


def test_flat_chain_at_the_limit_parses() -> None:
    assert depth(parse("+".join("a" * MAX_DEPTH))) == MAX_DEPTH
    with pytest.raises(ExpressionError, match=f"nested too deeply: {MAX_DEPTH + 1} levels, at most {MAX_DEPTH}"):
        parse("+".join("a" * (MAX_DEPTH + 1)))


TYPES = [
    ("rain > 0.5", B),
    ("rain", N),
    ("rain * 2 + -people", N),
    ("night", B),
    ("evening and not day", B),
    ("true", B),
    ("1", N),
    ("abs(rain)", N),
    ("max(a, b) < min(a, 3)", B),
    ("(a < b) and (b == c) or p", B),
]


@pytest.mark.parametrize(("text", "kind"), TYPES, ids=[t for t, _ in TYPES])
def test_types(text: str, kind: ExprType) -> None:
    assert check(parse(text), NAMES) is kind


TYPE_ERRORS = [
    ("rain and p", "expected a boolean on the left of 'and', got number 'rain'"),
    ("p or rain + 1", "expected a boolean on the right of 'or', got number 'rain + 1'"),
    ("not rain", "expected a boolean after 'not', got number 'rain'"),
    ("-night", "expected a number after unary '-', got boolean 'night'"),
    ("night + 1", "expected a number on the left of '+', got boolean 'night'"),
    ("rain > true", "expected a number on the right of '>', got boolean 'true'"),
    ("night == true", "expected a number on the left of '==', got boolean 'night'"),
    ("(a < b) < c", "expected a number on the left of '<', got boolean 'a < b'"),
    ("abs(p)", "expected a number as argument 1 of abs(), got boolean 'p'"),
    ("max(1, a > 2)", "expected a number as argument 2 of max(), got boolean 'a > 2'"),
    ("rian > 1", "unknown name 'rian'; known: a, b, c, day, evening, night, p, people, q, rain"),
    ("p and (1 + x) > 2", "unknown name 'x'"),
]


@pytest.mark.parametrize(("text", "message"), TYPE_ERRORS, ids=[t for t, _ in TYPE_ERRORS])
def test_type_errors_name_the_operator_and_the_operand(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        check(parse(text), NAMES)
    assert str(info.value) == message or message in str(info.value)


def test_type_error_messages_shorten_long_operands() -> None:
    text = "(" + " + ".join(["rain"] * 20) + ") and p"
    with pytest.raises(ExpressionError) as info:
        check(parse(text), NAMES)
    assert len(str(info.value)) < 150
    assert "..." in str(info.value)


def test_names_used() -> None:
    assert names_used(parse("night and (rain > max(a, b) or not evening) and 1 < 2")) == {
        "night", "rain", "a", "b", "evening"}
    assert names_used(parse("true")) == set()


def test_format_number_reads_back_exactly() -> None:
    for value in (0.0, 1.0, 0.1, 1 / 3, 2.0**53, 2.0**60, 1e-300, 5e-324, 1.7976931348623157e308, 123456.5):
        assert parse(format_number(value)) == Const(value)
    assert format_number(100.0) == "100"


# ---- round trips over generated trees ----

_LEAF_NAMES = st.sampled_from(["a", "b", "rain", "night", "x_1", "_y", "andy", "notify", "order", "truex"])
_NUMBERS = st.one_of(st.integers(0, 10**6).map(float),
                     st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False))
_LEAVES: st.SearchStrategy[Expr] = st.one_of(
    st.builds(Const, _NUMBERS), st.builds(Const, st.sampled_from([0.0, 1.0]), st.just(True)),
    st.builds(Name, _LEAF_NAMES))


def _extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    ops = st.sampled_from([*expressions.ARITHMETIC, *expressions.COMPARISONS, *expressions.LOGIC])
    return st.one_of(
        st.builds(Unary, st.sampled_from(["neg", "not"]), children),
        st.builds(Binary, ops, children, children),
        st.builds(lambda x: Call("abs", (x,)), children),
        st.builds(lambda fn, x, y: Call(fn, (x, y)), st.sampled_from(["min", "max"]), children, children),
    )


TREES = st.recursive(_LEAVES, _extend, max_leaves=25)

# An independent printer with as few parentheses as the grammar allows (what a person writes):
# parsing its output checks precedence and associativity against this table, not against to_text.
_BINDING = {"or": 1, "and": 2, **dict.fromkeys(expressions.COMPARISONS, 4), "+": 5, "-": 5, "*": 6, "/": 6}
_NOT, _NEG, _ATOM = 3, 7, 8


def _minimal(expr: Expr) -> tuple[str, int]:
    if isinstance(expr, Const | Name):
        return to_text(expr), _ATOM
    if isinstance(expr, Call):
        return f"{expr.fn}({', '.join(_minimal(a)[0] for a in expr.args)})", _ATOM
    if isinstance(expr, Unary):
        text, binding = _minimal(expr.operand)
        if expr.op == "neg":
            return f"- {text if binding >= _NEG else f'({text})'}", _NEG
        return f"not {text if binding >= _NOT else f'({text})'}", _NOT
    op = _BINDING[expr.op]
    (left, lb), (right, rb) = _minimal(expr.left), _minimal(expr.right)
    comparison = op == 4
    # Left-associative: the right operand needs parentheses at equal binding; comparisons never chain;
    # `not` is only an operand of and/or/not.
    if lb < op or (comparison and lb == op) or (lb == _NOT and op > _NOT):
        left = f"({left})"
    if rb <= op or (rb == _NOT and op > _NOT):
        right = f"({right})"
    return f"{left} {expr.op} {right}", op


@FAST
@given(TREES)
def test_parse_of_to_text_is_the_same_tree(tree: Expr) -> None:
    assert parse(to_text(tree)) == tree


@FAST
@given(TREES)
def test_parse_of_minimal_text_is_the_same_tree(tree: Expr) -> None:
    text, _ = _minimal(tree)
    assert parse(text) == tree
    assert to_text(parse(to_text(parse(text)))) == to_text(tree)


@FAST
@given(st.text(alphabet=st.sampled_from(list("ab1.5 ()+-*/<>=!andotrufslebx,\t")), max_size=60))
def test_any_text_parses_or_raises_expression_error(text: str) -> None:
    try:
        tree = parse(text)
    except ExpressionError:
        return
    assert parse(to_text(tree)) == tree
    with contextlib.suppress(ExpressionError):
        check(tree, {"a": N, "b": N, "x": B})


@FAST
@given(st.text(max_size=80))
def test_any_unicode_text_parses_or_raises_expression_error(text: str) -> None:
    with contextlib.suppress(ExpressionError):
        parse(text)


def test_module_examples_run() -> None:
    assert doctest.testmod(expressions, raise_on_error=True).attempted > 0
