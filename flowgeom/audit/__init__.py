r"""The paper audit: each claim of Liao, Chitour & Couillet measured, with a verdict.

Every verdict is computed from measurements made when :func:`verify_claims` runs; no
verdict is written in advance. A claim gets one of

- ``holds``: every measurement agrees with the statement;
- ``holds, bound loose``: a stated bound holds but is not attained (the slack is reported);
- ``holds with correction``: the statement is right after a correction that the measurement
  pins down (for example a factor or an index), stated in the row;
- ``contradicted``: a measurement contradicts the statement; the counterexample is given.

Each check uses two independent methods where the question allows (for example the
linearization at sampled critical points *and* trajectories of the flow), and reports the
problems it ran on. :func:`claims_markdown` renders the table written to ``claims.md``,
:func:`claims_dataset` the same as an xarray Dataset (``claims.nc``). :func:`add_paper_columns`
joins the paper's counts (:func:`paper_bounds`) onto a strata Dataset (:mod:`flowgeom.audit.paper`).

The last two rows measure the deep case (H >= 2) that the paper defers to an extended version:
whether its saddles are strict (they are not: non-strict saddles occur, as the closed-form criterion
of :mod:`flowgeom.linear.strictness` predicts) and whether almost every flow still reaches L = 0
at long horizons.

References
----------
Z. Liao, Y. Chitour, R. Couillet, "Almost global convergence to global minima for gradient
descent in deep linear networks" (the paper in ``shared/paper``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from flowgeom._version import __version__
from flowgeom.audit._base import VERDICTS, Claim, _Context
from flowgeom.audit._critical import (
    check_lemma2,
    check_lemma3,
    check_lemma4,
    check_prop2_ii_iii,
)
from flowgeom.audit._deep import check_deep_strict, check_deep_theorem1
from flowgeom.audit._flows import (
    check_change_of_variables,
    check_codimension_two,
    check_lemma1,
    check_prop1,
    check_prop2_i,
    check_remark1,
    check_theorem1,
)
from flowgeom.audit.paper import PAPER_COLUMNS, add_paper_columns, paper_bounds

__all__ = [
    "PAPER_COLUMNS",
    "VERDICTS",
    "Claim",
    "add_paper_columns",
    "claims_dataset",
    "claims_markdown",
    "paper_bounds",
    "verify_claims",
]

# ---------------------------------------------------------------------------- registry
_CHECKS = [
    check_change_of_variables,
    check_lemma1,
    check_prop1,
    check_prop2_i,
    check_theorem1,
    check_remark1,
    check_lemma2,
    check_prop2_ii_iii,
    check_lemma3,
    check_lemma4,
    check_codimension_two,
    check_deep_strict,
    check_deep_theorem1,
]


def verify_claims(*, quick: bool = False, seed: int = 0, progress: bool = False) -> list[Claim]:
    """Measure every claim of the paper and return one :class:`Claim` per row.

    Parameters
    ----------
    quick : bool, default False
        Smaller ensembles and problems (seconds instead of about a minute); verdicts are the
        same measurements at lower sample sizes.
    seed : int, default 0
        Root seed of every random draw.
    progress : bool, default False
        A progress bar with an ETA over the checks, showing the one being measured
        (:mod:`flowgeom._progress`).

    Returns
    -------
    list of Claim
    """
    from flowgeom._progress import progress_bar

    ctx = _Context(quick=quick, seed=int(seed))
    claims = []
    with progress_bar(_CHECKS, desc="claims", unit="check", enabled=progress) as bar:
        for check in bar:
            bar.set_postfix_str(check.__name__.removeprefix("check_"), refresh=True)
            result = check(ctx)
            claims.extend(result if isinstance(result, list) else [result])
    return claims


def claims_markdown(claims: list[Claim]) -> str:
    """The claims table as Markdown (the content of ``claims.md``)."""
    lines = [
        "# Claims of the paper, as measured by flowgeom",
        "",
        f"flowgeom {__version__}. Every verdict below comes from measurements made when this file was written.",
        "",
        "| claim | statement | measured | problems | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in claims:
        cells = [c.source, c.statement, c.measured, c.problems, f"**{c.verdict}**"]
        lines.append("| " + " | ".join(x.replace("|", "\\|").replace("\n", " ") for x in cells) + " |")
    return "\n".join(lines) + "\n"


def claims_dataset(claims: list[Claim], *, seed: int = 0, quick: bool = False) -> xr.Dataset:
    """The claims as a Dataset with dimension ``claim`` (strings per claim, numbers flattened to attrs-free vars)."""
    keys = [c.key for c in claims]
    ds = xr.Dataset(
        {
            "source": ("claim", [c.source for c in claims]),
            "statement": ("claim", [c.statement for c in claims]),
            "measured": ("claim", [c.measured for c in claims]),
            "problems": ("claim", [c.problems for c in claims]),
            "verdict": ("claim", [c.verdict for c in claims]),
        },
        coords={"claim": keys},
        attrs={"flowgeom_version": __version__, "seed": int(seed), "quick": bool(quick)},
    )
    names = sorted({f"{c.key}__{k}" for c in claims for k in c.numbers})
    for name in names:
        key, k = name.split("__", 1)
        vals = [float(c.numbers[k]) if (c.key == key and k in c.numbers) else np.nan for c in claims]
        ds[name] = ("claim", np.array(vals, dtype=np.float64))
    return ds
