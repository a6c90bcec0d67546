"""Tests of flowgeom.report: one self-contained report.html, checked as text and in headless Chromium
(no console errors, every stratum label and claim verdict in the DOM, the graph answers a click,
a screenshot that is not blank)."""

import itertools
import os
import re
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from test_schema import VERDICT_SAMPLE, tiny_linear, tiny_tanh

from flowgeom import _report_parts as parts
from flowgeom.io import save_dataset
from flowgeom.report import report_from_directory, write_report

CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason="headless Chromium is not installed (/usr/bin/chromium, Debian package `chromium`; .ci/run installs it)",
)


class _Text(HTMLParser):
    """Visible text of a page (script and style contents excluded) and the ids met."""

    def __init__(self):
        super().__init__()
        self.chunks, self.ids, self._skip = [], {}, 0
        self._stack = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        a = dict(attrs)
        self._stack.append(a.get("id"))
        if "id" in a:
            self.ids[a["id"]] = []

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        if self._stack:
            self._stack.pop()

    def handle_data(self, data):
        if self._skip:
            return
        self.chunks.append(data)
        for i in self._stack:
            if i is not None:
                self.ids[i].append(data)

    def text(self):
        return " ".join(self.chunks)

    def text_of(self, id_):
        return "".join(self.ids.get(id_, []))


def _parse(page: str) -> _Text:
    p = _Text()
    p.feed(page)
    return p


def _labels(datasets):
    out = []
    for k in ("strata", "basins", "transitions"):
        if k in datasets and "label" in datasets[k].variables:
            out += [str(x) for x in datasets[k]["label"].values]
    return sorted(set(out))


@pytest.fixture(scope="module")
def linear():
    datasets, claims = tiny_linear()
    return datasets, claims


@pytest.fixture(scope="module")
def tanh():
    return tiny_tanh()


def _cells_of(text: str) -> list[str]:
    return [c.strip() for c in text.split("  ") if c.strip()]


# ---------------------------------------------------------------------------- page as text
def test_self_contained_page_holds_every_label_and_verdict(tmp_path, linear):
    datasets, claims = linear
    path = write_report(datasets, tmp_path / "out" / "report.html", provenance={"timings": {"strata": 1.5}})
    page = path.read_text(encoding="utf-8")
    # plotly.js inlined exactly once; outside it nothing is fetched (no external script, stylesheet, image)
    from plotly.offline import get_plotlyjs

    assert page.count(get_plotlyjs()[-200:]) == 1
    own = page.replace(get_plotlyjs(), "")
    assert not re.search(r"<script[^>]+src=", own) and "<link" not in own
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", own)
    p = _parse(page)
    text = p.text()
    for lab in _labels(datasets):
        assert lab in text, lab
    strata_text = p.text_of("strata")
    assert all(lab in strata_text for lab in datasets["strata"]["label"].values)
    claims_text = p.text_of("claims")
    for c in claims:
        assert c.verdict in claims_text and c.source in claims_text
    assert set(VERDICT_SAMPLE) <= {c.verdict for c in claims}
    assert '"strata": 1.5' in p.text_of("provenance")
    for section in ("strata", "graph", "basins", "loss", "claims", "provenance"):
        assert section in p.ids, section


def test_strata_table_numbers_come_from_the_datasets(linear):
    datasets, _ = linear
    s, b = datasets["strata"], datasets["basins"]
    header, rows = parts.strata_rows(s, b, datasets["transitions"])
    assert [r[0].split(">")[1].split("<")[0] for r in rows] == [str(x) for x in s["label"].values]
    ci = header.index("basin fraction [interval]")
    for i, row in enumerate(rows):
        f, lo, hi = (float(b[k].values[i]) for k in ("fraction", "fraction_low", "fraction_high"))
        assert row[ci] == f"{f:.3g} [{lo:.3g}, {hi:.3g}]"
        assert row[header.index("critical value")] == f"{float(s['critical_value'].values[i]):.4g}"


def test_graph_hover_and_dwell_histograms_match_the_tables(linear):
    datasets, _ = linear
    tr = datasets["transitions"]
    fig, data = parts.graph_figure(tr, datasets["strata"])
    nodes = fig.data[2]
    labels = [str(x) for x in tr["label"].values]
    assert list(nodes.text) == labels
    np.testing.assert_array_equal(nodes.y, tr["critical_value"].values)
    np.testing.assert_array_equal(np.round(nodes.x), tr["rank"].values)
    for e in range(tr.sizes["edge"]):
        text = data["edges"][f"edge:{e}"]
        p, lo, hi = (float(tr[k].values[e]) for k in ("probability", "probability_low", "probability_high"))
        assert f"probability: {p:.3g} [{lo:.3g}, {hi:.3g}]" in text
        assert f"count: {int(tr['count'].values[e])}" in text
    # dwell histograms: counted again from the visit table
    for lab in labels:
        mask = (tr["stratum"].values == lab) & ~tr["final"].values
        h = data["hist"].get(lab, {"n": 0, "y": []})
        assert h["n"] == int(mask.sum()) and sum(h["y"]) == int(mask.sum())
        assert sum(h["y"]) == 0 or np.isclose(np.sum(np.multiply(h["x"], h["y"])) / h["n"],
                                              np.mean((tr["t_exit"] - tr["t_enter"]).values[mask]),
                                              rtol=0.5)
    left = {lab: int(tr["n_left"].values[i]) for i, lab in enumerate(labels)}
    assert {k: v["n"] for k, v in data["hist"].items()} == {k: v for k, v in left.items() if k in data["hist"]}


@pytest.mark.parametrize("subset", [s for r in (1, 2) for s in itertools.combinations(
    ("strata", "basins", "transitions"), r)], ids="+".join)
@pytest.mark.parametrize("model", ["linear", "tanh"])
def test_any_subset_of_datasets(tmp_path, linear, tanh, subset, model):
    source = linear[0] if model == "linear" else tanh
    datasets = {k: source[k] for k in subset}
    page = write_report(datasets, tmp_path / "r.html").read_text(encoding="utf-8")
    text = _parse(page).text()
    labels = _labels(datasets)
    assert labels and all(lab in text for lab in labels)
    if model == "tanh":
        assert all(re.fullmatch(r"c\d+", lab) for lab in labels)
    assert ("fg-graph" in page) == ("transitions" in subset)


def test_from_directory_with_claims_markdown(tmp_path, linear):
    from flowgeom.audit import claims_markdown

    datasets, claims = linear
    for k in ("strata", "transitions"):
        save_dataset(datasets[k].copy(deep=True), tmp_path / f"{k}.nc")
    (tmp_path / "claims.md").write_text(claims_markdown(claims), encoding="utf-8")
    path = report_from_directory(tmp_path)
    assert path == tmp_path / "report.html"
    p = _parse(path.read_text(encoding="utf-8"))
    claims_text = p.text_of("claims")
    for c in claims:
        assert c.verdict in claims_text and c.source in claims_text
    assert "measured 1 a|b" in claims_text  # an escaped | inside a markdown cell
    assert "basins" not in p.ids
    with pytest.raises(NotADirectoryError, match="`directory`"):
        report_from_directory(tmp_path / "report.html")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="holds none of"):
        report_from_directory(empty)
    with pytest.raises(TypeError, match=r"`datasets\['strata'\]`"):
        write_report({"strata": 3}, tmp_path / "x.html")


def test_basins_by_horizon_figure(linear):
    b = linear[0]["basins"].copy()
    h = np.array([1.0, 10.0, 100.0])
    frac = np.outer(h / 100.0, b["fraction"].values)
    b["horizon"] = ("horizon", h)
    b["fraction_by_horizon"] = (("horizon", "stratum"), frac)
    b["fraction_by_horizon_low"] = (("horizon", "stratum"), frac * 0.9)
    b["fraction_by_horizon_high"] = (("horizon", "stratum"), np.minimum(frac * 1.1, 1.0))
    b["fraction_in_transit"] = ("horizon", 1.0 - h / 100.0)
    figs = parts.basins_figure(b)
    assert len(figs) == 2
    by = figs[1]
    assert [tr.name for tr in by.data] == [str(x) for x in b["label"].values] + ["in transit"]
    np.testing.assert_array_equal(by.data[0].y, frac[:, 0])


# ---------------------------------------------------------------------------- in a browser
def _chromium(tmp_path, target: str, *extra: str, budget: int = 8000) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'ud'}",
           "--enable-logging=stderr", "--v=0", f"--virtual-time-budget={budget}", *extra, target]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=180)


def _console_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines()
            if "Uncaught" in ln or ("CONSOLE" in ln and ("ERROR" in ln or "error" in ln.lower()))]


@needs_chromium
@pytest.mark.parametrize("model", ["linear", pytest.param("tanh", marks=pytest.mark.slow)])
def test_browser_renders_report(tmp_path, linear, tanh, model):
    datasets = dict(linear[0]) if model == "linear" else dict(tanh)
    path = write_report(datasets, tmp_path / "report.html", claims=linear[1])
    tr = datasets["transitions"]
    node = str(tr["label"].values[int(np.argmax(tr["n_left"].values))])  # a node with completed visits
    url = path.resolve().as_uri() + "#fg-click=node:" + node.replace("{", "%7B").replace("}", "%7D")
    run = _chromium(tmp_path, url, "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    assert not _console_errors(run.stderr), _console_errors(run.stderr)
    p = _parse(run.stdout)
    assert p.text_of("fg-errors") == ""  # window.onerror / unhandledrejection collector
    text = p.text()
    for lab in _labels(datasets):
        assert lab in text, lab
    for c in linear[1]:
        assert c.verdict in p.text_of("claims")
    # plotly drew every figure (one main-svg per plot at least) and the replayed click filled the side panel
    n_plots = run.stdout.count('class="plotly-graph-div')
    assert n_plots >= 3 and run.stdout.count('class="main-svg"') >= n_plots
    assert p.text_of("fg-side-info").startswith(f"Stratum {node}: ")
    side = run.stdout.split('id="fg-side-plot"', 1)[1][:20000]
    assert 'class="main-svg"' in side


@needs_chromium
@pytest.mark.slow
def test_browser_screenshot_not_blank(tmp_path, linear):
    import matplotlib.image as mpimg

    path = write_report(linear[0], tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    run = _chromium(tmp_path, path.resolve().as_uri(), "--window-size=1200,1600", f"--screenshot={shot}",
                    budget=3000)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    img = mpimg.imread(shot)[..., :3]
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) > 50
    not_white = np.mean(np.any(img < 0.95, axis=-1))
    assert not_white > 0.05
