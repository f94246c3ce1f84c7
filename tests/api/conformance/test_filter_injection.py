"""$filter (and other option / id) injection attempts: 400, never data, never a 5xx.

Attempts that are not valid OData answer 400; attempts that are valid OData because the attack
text sits inside a string literal answer 200 with nothing (or 400 for a type mismatch). Either
way no row comes back, the error does not echo more than ~100 characters of input nor name the
InfluxDB address or a file path, and the stored data is intact afterwards.
"""

from __future__ import annotations

import pytest

from tests.api.conformance import data
from tests.api.conformance.sta import ROOT, Sta, path

pytestmark = pytest.mark.integration

DIM_OBS = path("Datastreams", data.LIGHT_DIM, "Observations")
INVALID = [  # not OData: 400
    "result eq 1 or 1=1",
    "result gt 0; DROP DATABASE smartcity_test",
    "result eq 1) OR (time > 0",
    "result =~ /.*/",
    "result eq 1 --",
    '"result" > 0',
    "result eq 1\nor 1=1",
    "result eq 1 || true",
    "result eq 1 and sleep(10)",
    "result eq '1'' OR 1=1 --",
    "time > now() - 1000d",
    "result eq 1 GROUP BY *",
    "result eq 1 LIMIT 1 SLIMIT 1",
    "result eq 1 INTO \"stolen\"",
    "result eq 1' or ''='",
    "result eq 1 and ",
    "result eq 1\r\nSELECT * FROM street_light",
    "result eq 1 and " * 1500 + "result eq 1",  # ~24 kB, as long as a client library sends
    "(" * 5000 + "result eq 1" + ")" * 5000,  # deep nesting
]
INERT = [  # valid OData, the attack text inside a literal: 200 and nothing (or 400 on a type mismatch)
    ("Things", "name eq 'x'' or ''a''=''a'"),
    ("Things", "name eq 'Lichtmast Centrum 1'' --'"),
    ("Things", "name eq '.*'"),
    ("Things", "startswith(name,'.*')"),
    ("Things", "substringof('/.*/',name)"),
    ("Things", "name eq '\\'' or 1 eq 1"),
    ("Things", "name eq 'a\nb'"),
    ("Observations", "Datastream/id eq 'x'' OR device=~/.*/'"),
    ("Observations", "Datastream/id eq 'vs-sl-101.dim_level'' OR ''1''=''1'"),
    ("Observations", f"Datastream/id eq '{data.LIGHT_DIM}\\' OR 1=1 --'"),
    ("Datastreams('vs-sl-101.dim_level')/Observations", "result eq '.*'"),
    ("Datastreams('vs-sl-101.dim_level')/Observations", "result eq '1 OR 1=1'"),
    ("Datastreams('vs-sl-101.dim_level')/Observations", "result eq 'x'') OR (1=1'"),
    ("Datastreams('vs-sl-101.dim_level')/Observations", "phenomenonTime eq '2020-01-01'' OR time > 0 --'"),
]
OPTIONS = [  # other options carrying InfluxQL: 400
    ("$orderby", "result; DROP DATABASE smartcity_test"),
    ("$orderby", "time desc LIMIT 1"),
    ("$select", "result,*"),
    ("$select", "*::field"),
    ("$top", "1; DROP"),
    ("$skip", "0 OFFSET 5"),
    ("$skiptoken", "'; DROP DATABASE x; --"),
    ("$expand", "Observations($filter=result eq 1 or 1=1)"),
]


def assert_discreet(anon: Sta, served, text: str, body: str) -> None:
    """No more than 100 characters of the input echoed; no internal address or path."""
    for i in range(0, max(0, len(text) - 100), 50):
        assert text[i:i + 101] not in body, "the error echoes more than 100 characters of input"
    for internal in (served.influx.config.url, str(served.registry_path.parent), "Traceback"):
        assert internal not in body, f"the error names {internal!r}"


@pytest.mark.parametrize("flt", INVALID, ids=[f"{i}:{f[:25]!r}" for i, f in enumerate(INVALID)])
@pytest.mark.parametrize("target", ["observations", "things"])
def test_invalid_filter_answers_400(anon: Sta, served, flt: str, target: str) -> None:
    """Not a valid $filter: 400 naming the problem; never rows."""
    url = DIM_OBS if target == "observations" else path("Things")
    r = anon.get(url, **{"$filter": flt})
    assert r.status_code in (400, 414), f"$filter={flt[:60]!r} -> {r.status_code}: {r.text[:200]}"
    assert '"value"' not in r.text
    assert_discreet(anon, served, flt, r.text)


@pytest.mark.parametrize(("target", "flt"), INERT, ids=[f"{i}:{f[:25]!r}" for i, (_, f) in enumerate(INERT)])
def test_attack_text_in_literals_finds_nothing(anon: Sta, served, target: str, flt: str) -> None:
    """The attack text is compared as a string: no entity matches."""
    r = anon.get(f"{ROOT}/{target}", **{"$filter": flt})
    assert r.status_code in (200, 400), f"$filter={flt!r} -> {r.status_code}: {r.text[:200]}"
    if r.status_code == 200:
        assert r.json()["value"] == [], f"$filter={flt!r} found {r.json()['value'][:2]}"
    assert_discreet(anon, served, flt, r.text)


@pytest.mark.parametrize(("option", "value"), OPTIONS, ids=[f"{o}:{v[:20]}" for o, v in OPTIONS])
def test_other_options_with_influxql_answer_400(anon: Sta, served, option: str, value: str) -> None:
    """$orderby / $select / $top / $skip / $skiptoken / nested $filter carrying InfluxQL: 400."""
    url = path("Datastreams", data.LIGHT_DIM) if option == "$expand" else DIM_OBS
    r = anon.get(url, **{option: value})
    assert r.status_code == 400, f"{option}={value!r} -> {r.status_code}: {r.text[:200]}"
    assert_discreet(anon, served, value, r.text)


@pytest.mark.parametrize("ident", ["x' or '1'='1", "vs-sl-101.dim_level' OR 1=1 --", "x;DROP DATABASE x",
                                   "vs-sl-101.dim_level\\' or device =~ /.*/"])
def test_injection_in_ids_answers_404(anon: Sta, ident: str) -> None:
    """An id is a literal (quotes doubled in the URL): an attack text is just an unknown id."""
    for url in (path("Things", ident), path("Datastreams", ident, "Observations"), path("Observations", ident)):
        r = anon.get(url)
        assert r.status_code in (400, 404), f"{url} -> {r.status_code}: {r.text[:200]}"
        assert '"value"' not in r.text


def test_data_is_intact_after_the_attempts(anon: Sta, served) -> None:
    """Every attempt in one go, then the stored series is still all there."""
    for flt in INVALID + [f for _, f in INERT]:
        anon.get(DIM_OBS, **{"$filter": flt})
    for option, value in OPTIONS:
        anon.get(DIM_OBS, **{option: value})
    assert len(anon.all(DIM_OBS)) == data.N_DIM
    assert served.influx.config.database in {row[0] for s in served.influx.query("SHOW DATABASES")
                                             for row in s.values}
