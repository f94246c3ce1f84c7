import pytest

from core.line_protocol import field_value, line


def test_line_escapes_and_sorts_tags():
    got = line("street light", {"wijk": "WK 1", "device": "a,b=c"}, {"dim level": 20.0, "on": True}, 5)
    assert got == r"street\ light,device=a\,b\=c,wijk=WK\ 1 dim\ level=20.0,on=true 5"


def test_field_values():
    assert field_value(1) == "1i"
    assert field_value(0.1) == "0.1"
    assert field_value(False) == "false"
    assert field_value('say "hi"\\') == '"say \\"hi\\"\\\\"'
    with pytest.raises(ValueError, match="non-finite"):
        field_value(float("nan"))


def test_empty_tags_are_left_out_and_fields_required():
    assert line("m", {"a": ""}, {"f": 1.0}, 1) == "m f=1.0 1"
    with pytest.raises(ValueError, match="field"):
        line("m", {}, {}, 1)
