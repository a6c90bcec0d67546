"""The paper audit: every published verdict pinned, measured numbers with closed-form truths, the paper's columns.

The assertions below are not the paper's statements; they are facts derived independently:
- limits of L are 1/2 sum_{i not in S} s_i^2 (equation (8) of the paper evaluated at its own critical points);
- the H = 1 stratum with learned set S has dimension 2 d1 r - r^2 + (d1 - r)(dx - dy) (counting the
  free parameters of Cbar, Abar, B subject to Cbar Abar = D_S, Cbar B = 0);
- the flow conserves C_j exactly (Lemma 1's one-line proof), so a tight integrator must;
- on the scalar network the line w2 = -w1 is invariant and flows to the origin (closed form).
"""

import pytest

from flowgeom.audit import VERDICTS, claims_dataset, claims_markdown, verify_claims
from flowgeom.io import load_dataset, save_dataset


@pytest.fixture(scope="module")
def claims():
    """One quick audit run (seed 0, the README's seed), shared by every test of this module."""
    return verify_claims(quick=True, seed=0)


def test_every_claim_of_the_issue_is_audited(claims):
    keys = [c.key for c in claims]
    assert len(keys) == len(set(keys))
    for key in ("sec2_1", "lemma1", "prop1", "prop2_i", "prop2_ii", "prop2_iii", "lemma2", "lemma3", "lemma4",
                "codim2", "theorem1", "remark1"):
        assert key in keys
    assert all(c.verdict in VERDICTS for c in claims)
    assert all(c.measured and c.problems for c in claims)


def test_measured_numbers_match_independent_truths(claims):
    by = {c.key: c for c in claims}
    assert by["lemma1"].numbers["drift_dopri5"] < 1e-6
    assert by["lemma1"].numbers["drift_gauss_legendre"] < 1e-10
    assert by["prop2_i"].numbers["max_dist_half_set"] < 1e-8
    assert by["lemma3"].numbers["exceed"] == 0 and by["lemma3"].numbers["exact"] == by["lemma3"].numbers["points"]
    assert by["theorem1"].numbers["not_global"] == 0
    assert by["codim2"].numbers["scalar_line_to_origin"] == 1.0
    assert by["sec2_1"].numbers["flow_gap_whitened"] < 1e-6
    assert by["sec2_1"].numbers["flow_gap_not_whitened"] > 1e-3
    assert by["remark1"].numbers["violation_dy_largest"] <= 1e-6


def test_markdown_and_dataset(claims, tmp_path):
    md = claims_markdown(claims)
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| claim")]
    assert len(rows) == len(claims)
    ds = claims_dataset(claims, seed=0, quick=True)
    assert list(ds["claim"].values) == [c.key for c in claims]
    back = load_dataset(save_dataset(ds, tmp_path / "claims.nc"))
    assert back.identical(ds)


def test_verdict_must_be_known():
    from flowgeom.audit import Claim

    with pytest.raises(ValueError, match="`verdict` must be one of"):
        Claim("k", "Lemma 0", "s", "m", "p", "probably")


# ---------------------------------------------------------------------------- published verdicts
# The README's table "The paper, audited" (seed 0). A regression that flips a verdict must fail here.
PUBLISHED = {
    "sec2_1": "contradicted",
    "lemma1": "holds",
    "prop1": "holds with correction",
    "prop2_i": "holds with correction",
    "prop2_ii": "holds",
    "prop2_iii": "holds with correction",
    "lemma2": "holds",
    "lemma3": "holds",
    "lemma4": "contradicted",
    "codim2": "contradicted",
    "theorem1": "holds",
    "remark1": "holds with correction",
    "deep_strict": "contradicted",
    "deep_theorem1": "holds",
}


@pytest.mark.parametrize("key", sorted(PUBLISHED))
def test_published_verdict_is_reproduced(claims, key):
    by = {c.key: c for c in claims}
    assert by[key].verdict == PUBLISHED[key], by[key].measured


def test_every_claim_has_a_published_verdict(claims):
    assert sorted(c.key for c in claims) == sorted(PUBLISHED)


def test_readme_table_matches_the_pins(claims):
    """Every row of the README's audit table names a claim's source and shows its pinned verdict."""
    import pathlib

    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    if not readme.exists():
        pytest.skip("README.md not in this checkout")
    text = readme.read_text(encoding="utf-8")
    section = text.split("## The paper, audited", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| claim")]
    sources = {c.source: c.key for c in claims}
    matched = 0
    for row in rows:
        cells = [x.strip() for x in row.strip("|").split("|")]
        keys = [k for src, k in sources.items() if cells[0].startswith(src)]
        if not keys:
            continue
        key = max(keys, key=lambda k: len(next(s for s, kk in sources.items() if kk == k)))
        assert cells[1].strip("*") == PUBLISHED[key], (cells[0], cells[1])
        matched += 1
    assert matched >= 12


def test_deep_rows_measure_non_strict_saddles_and_convergence(claims):
    by = {c.key: c for c in claims}
    d = by["deep_strict"].numbers
    assert d["non_strict"] >= 1 and d["criterion_agree"] == d["points"] and d["undecided"] == 0
    t = by["deep_theorem1"].numbers
    assert t["global_T500"] == t["total"] and t["global_T5"] <= t["global_T50"] <= t["global_T500"]
    assert t["wilson_low"] < 1.0 == t["wilson_high"]


# ---------------------------------------------------------------------------- the paper's columns
def _strata(widths, s, **kw):
    import numpy as np

    from flowgeom.linear.measure import build_strata_dataset
    from flowgeom.problem import Problem

    return build_strata_dataset(Problem.from_spectrum(np.array(s), widths), **kw)


@pytest.mark.parametrize("widths, s", [((4, 3, 2), (2.0, 1.0)), ((3, 2, 2), (2.0, 1.0))])
def test_add_paper_columns_reproduces_the_strata_builder(widths, s):

    from flowgeom.audit import PAPER_COLUMNS, add_paper_columns

    from flowgeom.audit import paper_bounds

    ds = _strata(widths, s, points_per_stratum=2, seed=1)
    out = add_paper_columns(ds)
    for name in PAPER_COLUMNS:
        assert name in out and name not in ds, name
    for k in range(out.sizes["stratum"]):
        r = int(out["rank"].values[k])
        assert tuple(int(out[c].values[k]) for c in ("paper_dim_bound", "paper_escape_bound", "paper_codim_bound")) \
            == paper_bounds(widths, r)
    # Lemma 4 at the top stratum r = 1 (README): n0 + n- = U_S - 1 there
    top = list(out["label"].values).index("{0}")
    assert bool(out["contradicts_paper"].values[top]) and "Lemma 4 violated" in str(out["paper_check"].values[top])


def _synthetic(widths, rank, manifold_dim, n_neg, n_zero, stable_codim, kind, depth=None):
    import numpy as np
    import xarray as xr

    one = lambda v, dt=np.int64: ("stratum", np.array([v], dtype=dt))
    return xr.Dataset(
        {
            "n_negative": one(n_neg), "n_negative_min": one(n_neg), "n_negative_max": one(n_neg),
            "n_zero": one(n_zero), "n_zero_min": one(n_zero), "n_zero_max": one(n_zero),
            "manifold_dim": one(manifold_dim), "stable_codim": one(stable_codim), "kind": one(kind, object),
        },
        coords={"label": one("{0}", object), "rank": one(rank), "critical_value": one(0.5, np.float64)},
        attrs={"widths": list(widths), "depth_H": len(widths) - 2 if depth is None else depth},
    )


def test_add_paper_columns_closed_forms_and_flags():
    """(4,3,2), r = 1: D_C = 2*3*1 - 1 + 2*2 = 9, U_S = 9 + 1*2 + 1 = 12 (Lemmas 3-4 as printed)."""
    from flowgeom.audit import add_paper_columns, paper_bounds

    assert paper_bounds((4, 3, 2), 1) == (9, 12, 3)
    assert paper_bounds((4, 3, 2), 0) == paper_bounds((4, 3, 2), 2) == paper_bounds((3, 3, 3, 2), 1) == (-1, -1, -1)
    ok = add_paper_columns(_synthetic((4, 3, 2), 1, 9, 2, 10, 3, "strict_saddle"))
    assert not bool(ok["contradicts_paper"].values[0])
    assert ok["paper_check"].values[0] == "dim 9 = D_C (bound attained); n0+n- = 12 >= U_S 12; stable codim 3 >= paper codim 3"
    bad = add_paper_columns(_synthetic((4, 3, 2), 1, 9, 2, 9, 2, "non_strict_saddle"))
    check = bad["paper_check"].values[0]
    assert bool(bad["contradicts_paper"].values[0])
    assert "Lemma 4 violated" in check and "stable codim 2 < paper codim 3" in check and "Proposition 2" in check


def test_add_paper_columns_for_other_models_is_na():
    import xarray as xr

    from flowgeom.audit import add_paper_columns

    deep = add_paper_columns(_synthetic((3, 3, 3, 2), 1, 5, 0, 7, -1, "non_strict_saddle"))
    assert deep["paper_kind"].values[0] == "n/a" and int(deep["paper_dim_bound"].values[0]) == -1
    assert not bool(deep["contradicts_paper"].values[0])
    plain = _synthetic((3, 3, 2), 1, 5, 0, 7, -1, "x").drop_vars("rank")
    plain.attrs = {}
    out = add_paper_columns(plain)
    assert out["paper_kind"].values[0] == "n/a" and out["paper_check"].values[0] == "no paper count for this stratum"
    with pytest.raises(ValueError, match="`strata`"):
        add_paper_columns(xr.Dataset())
