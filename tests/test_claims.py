"""The paper audit: structure of the claims table, and measured numbers that have closed-form truths.

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
    return verify_claims(quick=True, seed=3)


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
    ds = claims_dataset(claims, seed=3, quick=True)
    assert list(ds["claim"].values) == [c.key for c in claims]
    back = load_dataset(save_dataset(ds, tmp_path / "claims.nc"))
    assert back.identical(ds)


def test_verdict_must_be_known():
    from flowgeom.audit import Claim

    with pytest.raises(ValueError, match="`verdict` must be one of"):
        Claim("k", "Lemma 0", "s", "m", "p", "probably")
