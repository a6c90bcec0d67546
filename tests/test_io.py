"""Tests of flowgeom.io: save_dataset / load_dataset round-trip exactly (values, dtypes, attr types)."""

import math

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowgeom.io import ATTR_TYPES_KEY, decode_attrs, encode_attrs, load_dataset, save_dataset
from flowgeom.schema import SCHEMAS

FORMATS = [".nc", ".zarr"]


def _attr_equal(a, b):
    """Exact equality including Python type; NaN equals NaN; arrays by dtype, shape and bits."""
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list):
        return len(a) == len(b) and all(_attr_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_attr_equal(a[k], b[k]) for k in a)
    return a == b


def _assert_attrs_equal(d1, d2):
    assert d1.keys() == d2.keys()
    for k in d1:
        assert _attr_equal(d1[k], d2[k]), (k, d1[k], d2[k])


def _assert_roundtrip(ds, back):
    assert back.identical(ds) or _identical_nan(ds, back)
    _assert_attrs_equal(ds.attrs, back.attrs)
    for name in ds.variables:
        assert back[name].dtype == ds[name].dtype, name
        assert back[name].dims == ds[name].dims
        _assert_attrs_equal(ds[name].attrs, back[name].attrs)


def _identical_nan(a, b):
    # xarray's identical compares attrs with ==, for which NaN != NaN; compare the rest.
    return a.drop_attrs().identical(b.drop_attrs())


def basins_like():
    labels = np.array(["{}", "{0}", "{1}", "{0,1}"], dtype=object)
    return xr.Dataset(
        {
            "limit": ("sample", np.array([3, 3, -1, -2, 0], dtype=np.int64)),
            "final_loss": ("sample", np.array([0.0, 1e-300, np.nan, np.inf, 2.5])),
            "fraction": ("stratum", np.array([0.2, 0.0, 0.0, 0.4])),
            "morse_bott": ("stratum", np.array([True, False, True, True])),
        },
        coords={
            "label": ("stratum", labels),
            "rank": ("stratum", np.array([0, 1, 1, 2])),
            "critical_value": ("stratum", np.array([2.5, 0.5, 2.0, 0.0])),
        },
        attrs={
            "flowgeom_version": "0.1.0",
            "widths": [3, 2, 2],
            "singular_values": [2.0, 1.0],
            "depth_H": 1,
            "whitened": True,
            "seed": None,
            "tolerances": {"rtol": 1e-6, "atol": 1e-9},
            "nested": [[1, 2], [3]],
            "empty": [],
            "names": ["a", "b"],
            "big": 2**70,
            "arr": np.array([1.5, 2.5]),
            "arr2": np.arange(6, dtype=np.int32).reshape(2, 3),
            "np_bool": np.bool_(False),
            "np_int": np.int32(7),
            "nul": "a\x00b",
        },
    )


@pytest.mark.parametrize("suffix", FORMATS)
def test_basins_like_roundtrip(tmp_path, suffix):
    ds = basins_like()
    path = save_dataset(ds, tmp_path / f"b{suffix}")
    back = load_dataset(path)
    # numpy scalar attrs come back as their Python equivalents
    expected = ds.copy()
    expected.attrs["np_bool"] = False
    expected.attrs["np_int"] = 7
    _assert_roundtrip(expected, back)
    assert back.attrs["whitened"] is True and back.attrs["seed"] is None
    assert back["label"].dtype == object and list(back["label"].values) == ["{}", "{0}", "{1}", "{0,1}"]
    assert back["morse_bott"].dtype == bool


@pytest.mark.parametrize("suffix", FORMATS)
def test_native_attrs_readable_without_flowgeom(tmp_path, suffix):
    """Plain attrs stay plain for other tools: widths is a numeric array, bool is 0/1."""
    ds = basins_like()
    path = save_dataset(ds, tmp_path / f"b{suffix}")
    if suffix == ".nc":
        raw = xr.load_dataset(path, engine="h5netcdf")
    else:
        with xr.open_zarr(path, consolidated=False) as z:
            raw = z.load()
    assert list(np.asarray(raw.attrs["widths"])) == [3, 2, 2]
    assert int(np.asarray(raw.attrs["whitened"])) == 1
    assert ATTR_TYPES_KEY in raw.attrs


def test_resave_loaded_dataset(tmp_path):
    """A loaded dataset (carrying encodings) can be saved again, in the other format too."""
    ds = basins_like()
    a = load_dataset(save_dataset(ds, tmp_path / "a.nc"))
    b = load_dataset(save_dataset(a, tmp_path / "b.zarr"))
    c = load_dataset(save_dataset(b, tmp_path / "c.nc"))
    _assert_roundtrip(a, c)


def test_overwrite(tmp_path):
    ds = basins_like()
    p = tmp_path / "x.zarr"
    save_dataset(ds, p)
    ds2 = ds.isel(sample=slice(0, 2))
    save_dataset(ds2, p)
    assert load_dataset(p).sizes["sample"] == 2


def test_bad_input(tmp_path):
    ds = basins_like()
    with pytest.raises(ValueError, match=r"`path` must end in \.nc"):
        save_dataset(ds, tmp_path / "x.txt")
    with pytest.raises(TypeError, match="`ds` must be an xarray.Dataset"):
        save_dataset({"a": 1}, tmp_path / "x.nc")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(tmp_path / "missing.nc")
    with pytest.raises(TypeError, match="cannot be saved"):
        encode_attrs({"f": object()})
    with pytest.raises(ValueError, match="reserved key"):
        encode_attrs({ATTR_TYPES_KEY: "x"})
    with pytest.raises(ValueError, match="`format` must be"):
        save_dataset(ds, tmp_path / "x.nc", format="csv")


def test_foreign_file_attrs_pass_through(tmp_path):
    ds = xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"title": "other tool", "n": 3})
    p = tmp_path / "foreign.nc"
    ds.to_netcdf(p, engine="h5netcdf")
    back = load_dataset(p)
    assert back.attrs == {"title": "other tool", "n": 3} and type(back.attrs["n"]) is int


# ---------------------------------------------------------------------------- hypothesis
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_json_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=5), children, max_size=3),
    ),
    max_leaves=10,
)
_attr_names = st.text(
    alphabet=st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attrs=st.dictionaries(_attr_names, _json_values, max_size=6))
def test_attrs_encode_decode_roundtrip(attrs):
    _assert_attrs_equal(attrs, decode_attrs(encode_attrs(attrs)))


@pytest.mark.parametrize("suffix", FORMATS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    attrs=st.dictionaries(_attr_names, _json_values, max_size=5),
    var_attrs=st.dictionaries(_attr_names, _json_values, max_size=3),
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=6),
    labels=st.lists(st.text(alphabet="{}0123456789,", max_size=6), min_size=1, max_size=4),
)
def test_dataset_roundtrip_hypothesis(tmp_path, suffix, attrs, var_attrs, values, labels):
    ds = xr.Dataset(
        {"v": ("sample", np.array(values), var_attrs), "n": ("stratum", np.arange(len(labels)))},
        coords={"label": ("stratum", np.array(labels, dtype=object))},
        attrs=attrs,
    )
    back = load_dataset(save_dataset(ds, tmp_path / f"h{suffix}"))
    _assert_roundtrip(ds, back)


# ---------------------------------------------------------------------------- to_dataset / from_dataset
def _same_trajectory(a, b):
    import dataclasses

    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        elif isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), f.name
        else:
            assert x == y, f.name


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("kind", ["flow", "flow-no-states", "gd"])
def test_trajectory_roundtrip(tmp_path, suffix, kind):
    from flowgeom import DeepLinearNetwork
    from flowgeom.flow import SaveAt, gradient_descent, integrate
    from flowgeom.io import from_dataset, to_dataset

    net = DeepLinearNetwork.canonical((3, 2, 2), [2.0, 1.0])
    th = net.random_params(np.random.default_rng(0), scale=0.5, size=3)
    th[2] *= 20.0  # beyond max_norm: status DIVERGED, NaN rows in ys
    if kind == "gd":
        tr = gradient_descent(net, th, 0.05, n_steps=50, saveat=SaveAt(n_log=5), max_norm=5.0, backend="numpy")
    else:
        tr = integrate(net, th, 5.0, saveat=SaveAt(n_log=6, states=kind == "flow"), max_norm=5.0,
                       backend="numpy")
    assert tr.status[2] == 2 and tr.status[0] != 2
    ds = to_dataset(tr, attrs={"seed": 0, "widths": [3, 2, 2]})
    assert ds.attrs["flowgeom_type"] == "Trajectory" and ds.sizes["trajectory"] == 3
    _same_trajectory(tr, from_dataset(ds))
    back = load_dataset(save_dataset(ds, tmp_path / f"t{suffix}"))
    _same_trajectory(tr, from_dataset(back))


def test_to_from_dataset_errors():
    from flowgeom.io import from_dataset, to_dataset

    with pytest.raises(TypeError, match="`obj` must be"):
        to_dataset([1, 2])
    with pytest.raises(ValueError, match="flowgeom_type"):
        from_dataset(xr.Dataset())


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_two_dimensional_object_strings_roundtrip(tmp_path, suffix):
    """Regression: 2-D object-dtype string variables failed to reload (found by the studies)."""
    a = np.array([["a", "bb"], ["c", ""]], dtype=object)
    ds = xr.Dataset({"s": (("x", "y"), a)})
    back = load_dataset(save_dataset(ds, tmp_path / f"d{suffix}"))
    assert back.identical(ds)


# ---------------------------------------------------------------------------- self-describing files
def test_save_completes_descriptive_attrs_in_place(tmp_path):
    """save_dataset adds the schema's long_name/description/units and the CF global attrs to the
    Dataset it writes (in place, never overwriting), so load(save(ds)) is identical to ds."""
    ds = basins_like()
    ds["fraction"].attrs["description"] = "my own words"
    before = {k: dict(ds[k].attrs) for k in ds.variables}
    before_global = dict(ds.attrs)
    back = load_dataset(save_dataset(ds, tmp_path / "b.nc", command="flowgeom basins --samples 5"))
    assert back.identical(ds)
    assert ds["fraction"].attrs["description"] == "my own words"  # not overwritten
    assert ds["fraction"].attrs["long_name"] == "basin fraction" and ds["fraction"].attrs["units"] == "1"
    added = {"long_name", "description", "units"}
    for k, attrs in before.items():
        assert set(ds[k].attrs) - set(attrs) <= added, k
        assert all(ds[k].attrs[a] == v for a, v in attrs.items()), k
        assert ("long_name" in ds[k].attrs) == (k in SCHEMAS["basins"]), k  # morse_bott is not a basins variable
    assert set(ds.attrs) - set(before_global) == {"Conventions", "title", "history", "source", "references",
                                                  "flowgeom_kind"}
    assert ds.attrs["history"].endswith(" flowgeom basins --samples 5") and ds.attrs["flowgeom_kind"] == "basins"
    # a second save keeps the first history (attributes already set are never overwritten)
    again = load_dataset(save_dataset(back, tmp_path / "c.zarr", command="other"))
    assert again.attrs["history"] == ds.attrs["history"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_reserved_global_coordinates_attr_roundtrips(tmp_path, suffix):
    """Regression: a global attr named `coordinates` (CF-reserved) was consumed by xarray on reading."""
    ds = xr.Dataset({"a": ("stratum", [1.0, 2.0])}, coords={"rank": ("stratum", [0, 1])},
                    attrs={"coordinates": "model"})
    back = load_dataset(save_dataset(ds, tmp_path / f"r{suffix}"))
    assert back.attrs["coordinates"] == "model" and "rank" in back.coords
    assert back.identical(ds)


def test_fixed_width_unicode_to_zarr_without_warning(tmp_path):
    """Fixed-width unicode (claims) is stored as variable-length strings in Zarr (no unstable-spec
    warning, which the test configuration turns into an error) and comes back as fixed width."""
    ds = xr.Dataset({"verdict": ("claim", np.array(["holds", "contradicted"]))},
                    coords={"claim": ("claim", np.array(["a", "bb"]))})
    back = load_dataset(save_dataset(ds, tmp_path / "u.zarr"))
    assert back["verdict"].dtype == np.dtype("<U12") and back["claim"].dtype == np.dtype("<U2")
    assert back.identical(ds)


@pytest.mark.parametrize("suffix", FORMATS)
def test_describe_foreign_and_errors(tmp_path, suffix):
    from flowgeom.io import describe

    ds = xr.Dataset({"a": ("x", np.arange(3.0), {"units": "m"})}, attrs={"title": "other tool"})
    p = tmp_path / f"f{suffix}"
    if suffix == ".nc":
        ds.to_netcdf(p, engine="h5netcdf")
    else:
        ds.to_zarr(p, consolidated=False)
    text = describe(p)
    assert text.splitlines()[0] == f"f{suffix}: other tool"
    assert "kind: unknown" in text and "  a (x) float64: (no long_name) [m]" in text and "dimensions: x = 3" in text
    with pytest.raises(FileNotFoundError, match="does not exist"):
        describe(tmp_path / "missing.nc")
    with pytest.raises(ValueError, match="`path` must end in"):
        describe(tmp_path / "x.txt")
