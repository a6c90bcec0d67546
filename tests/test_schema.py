"""Tests of flowgeom.schema: every variable flowgeom writes is described, the schema's dims match
the Datasets the code builds, nothing already set is overwritten, CF global attrs, describe()."""

import datetime as dt
import functools
import re

import numpy as np
import pytest
import xarray as xr

from flowgeom import schema
from flowgeom._validate import InputError
from flowgeom.io import describe, load_dataset, save_dataset

VERDICT_SAMPLE = ("holds", "holds, bound loose", "holds with correction", "contradicted")


@functools.cache
def tiny_linear():
    """The four Datasets of a tiny deep linear problem, built with the public API (a few seconds)."""
    from flowgeom import Problem, build_strata_dataset, sample_basins, sample_transitions
    from flowgeom.audit import Claim, claims_dataset

    pb = Problem.from_spectrum((2.0, 1.0), (3, 2, 2))
    claims = [Claim(key=f"c{i}_k", source=f"Lemma {i}", statement=f"statement {i}", measured=f"measured {i} a|b",
                    problems="widths (3, 2, 2)", verdict=v, numbers={"points": float(i)})
              for i, v in enumerate(VERDICT_SAMPLE)]
    return {
        "strata": build_strata_dataset(pb),
        "basins": sample_basins(pb, 16, seed=0, scheduler="synchronous", progress=False),
        "transitions": sample_transitions(pb, 4, seed=0),
        "claims": claims_dataset(claims),
    }, claims


@functools.cache
def tiny_tanh():
    """The searched atlas of a tiny tanh network (labels c0, c1, ...)."""
    from flowgeom import Problem, atlas, mlp_for_problem

    pb = Problem.from_spectrum((1.0,), (2, 2, 1))
    m = mlp_for_problem(pb, "tanh")
    return atlas(m, samples=12, transition_samples=4, transition_scale=1e-3, seed=0,
                 atlas_options={"n_starts": 12}, basins_options={"scheduler": "synchronous"},
                 transitions_options={"t1": 60.0})


def _all_built():
    lin, _ = tiny_linear()
    out = [(f"linear-{k}", k, v) for k, v in lin.items()]
    out += [(f"tanh-{k}", k, v) for k, v in tiny_tanh().items()]
    return out


@pytest.fixture(scope="module")
def built():
    return [(name, kind, ds.copy(deep=True)) for name, kind, ds in _all_built()]


def test_schema_tables_are_complete():
    coming = {
        "basins": ["limit_numerical", "limit_exact", "limit_decided", "horizon", "fraction_by_horizon",
                   "fraction_by_horizon_low", "fraction_by_horizon_high", "fraction_in_transit",
                   "fraction_in_transit_low", "fraction_in_transit_high", "endgame"],
        "strata": ["measured", "data_critical_value", "grad_flatness", "refine_residual", "coverage_searches",
                   "coverage_classes", "p_new_class"],
        "transitions": ["chain_state", "absorption_probability", "absorption_probability_low",
                        "absorption_probability_high", "expected_hitting_time", "expected_hitting_time_low",
                        "expected_hitting_time_high", "dwell_hist"],
    }
    for kind, names in coming.items():
        assert set(names) <= set(schema.SCHEMAS[kind]), kind
    assert "n_strata_total" in schema.GLOBAL_ATTR_DESCRIPTIONS
    for kind, table in schema.SCHEMAS.items():
        for name, spec in table.items():
            assert spec.long_name.strip() and spec.description.strip(), (kind, name)
            assert spec.units in (None, "1"), (kind, name)
            assert isinstance(spec.dims, tuple)


def test_every_written_variable_is_described_and_dims_match(built):
    for name, kind, ds in built:
        assert schema.infer_kind(ds) == kind, name
        schema.describe_variables(ds)
        for v in ds.variables:
            attrs = ds[v].attrs
            assert attrs.get("long_name") and attrs.get("description"), (name, v)
            spec = schema.variable_spec(str(v), kind)
            # the schema's dims are those of the Dataset the code builds
            assert spec.dims == ds[v].dims, (name, v, spec.dims, ds[v].dims)
            if "units" in attrs:
                assert ds[v].dtype.kind in "iuf", (name, v)


def test_describe_never_overwrites_and_leaves_unknown_alone():
    ds = xr.Dataset(
        {"fraction": ("stratum", [1.0], {"long_name": "mine", "units": "percent"}),
         "limit": ("sample", [0]), "mystery": ("sample", [1.5])},
        coords={"label": ("stratum", np.array(["{}"], dtype=object))},
    )
    out = schema.describe_variables(ds)
    assert out is ds
    assert ds["fraction"].attrs["long_name"] == "mine" and ds["fraction"].attrs["units"] == "percent"
    assert ds["fraction"].attrs["description"] == schema.SCHEMAS["basins"]["fraction"].description
    assert ds["mystery"].attrs == {}
    assert ds["label"].attrs["long_name"] == "stratum label" and "units" not in ds["label"].attrs
    foreign = xr.Dataset({"a": ("x", [1.0])})
    assert schema.infer_kind(foreign) is None
    assert schema.describe_variables(foreign)["a"].attrs == {}


def test_infer_kind_prefers_the_recorded_kind():
    ds = xr.Dataset({"a": ("stratum", [1.0])}, attrs={"flowgeom_kind": "basins"})
    assert schema.infer_kind(ds) == "basins"
    assert schema.infer_kind(xr.Dataset(attrs={"flowgeom_type": "Trajectory"})) == "trajectory"
    with pytest.raises(TypeError, match="`ds` must be"):
        schema.infer_kind({"a": 1})


def test_claim_metrics_get_a_generic_description():
    spec = schema.variable_spec("lemma4__morse_bott", "claims")
    assert spec is not None and "lemma4" in spec.description and spec.dims == ("claim",)
    assert schema.variable_spec("lemma4__morse_bott", "strata") is None
    assert schema.variable_spec("anything", None) is None


def test_global_attrs_cf():
    t = dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.timezone.utc)
    g = schema.global_attrs("strata", command="flowgeom atlas --widths 3,2,2", time=t)
    assert g["Conventions"] == "CF-1.11"
    assert g["history"] == "2026-01-02T03:04:05+00:00 flowgeom atlas --widths 3,2,2"
    from flowgeom import __version__

    assert g["source"] == f"flowgeom {__version__}" and "Liao" in g["references"]
    assert g["flowgeom_kind"] == "strata" and g["title"]
    now = schema.global_attrs(None)
    assert "flowgeom_kind" not in now
    stamp = now["history"].split(" ", 1)[0]
    assert abs(dt.datetime.fromisoformat(stamp) - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    with pytest.raises(InputError, match="`kind` must be one of"):
        schema.global_attrs("atlas")
    with pytest.raises(InputError, match="`kind`"):
        schema.describe_variables(xr.Dataset(), kind="nope")


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_saved_files_describe_themselves(tmp_path, suffix):
    for name, kind, ds in _all_built():
        ds = ds.copy(deep=True)
        path = save_dataset(ds, tmp_path / f"{name}{suffix}", command="pytest")
        back = load_dataset(path)
        assert back.identical(ds), name
        assert back.attrs["Conventions"] == "CF-1.11" and back.attrs["flowgeom_kind"] == kind
        assert back.attrs["history"].endswith(" pytest")
        for v in back.variables:
            assert back[v].attrs.get("description"), (name, v)
        text = describe(path)
        assert text.splitlines()[0].startswith(path.name + ": flowgeom " + kind)
        assert f"kind: {kind}" in text and "Conventions: CF-1.11" in text
        for v in back.variables:
            line = next(ln for ln in text.splitlines() if re.match(rf"^  {re.escape(str(v))} \(", ln))
            assert back[v].attrs["long_name"] in line, (name, v)
        for k in ("flowgeom_version", "seed"):
            if k in back.attrs:
                assert f"  {k} = " in text, (name, k)
