r"""The sections of ``report.html`` (internal to :mod:`flowgeom.report`): tables as HTML text and
figures as plotly ``graph_objects``.

Every builder takes the Datasets it needs (any of them may be missing) and returns an HTML
fragment; labels and verdicts are written as text nodes (escaped), so that the page's DOM holds
every stratum label and every claim verdict.
"""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any

import numpy as np
import xarray as xr

_KIND_COLOURS = {"global_min": "#2a9d8f", "local_min": "#e9c46a", "strict_saddle": "#e76f51",
                 "degenerate": "#8d99ae"}
_VERDICT_CLASS = {"holds": "ok", "holds, bound loose": "ok", "holds with correction": "warn",
                  "contradicted": "bad"}


def esc(v: Any) -> str:
    """HTML-escaped text of ``v``."""
    return html.escape(str(v), quote=True)


def fmt(v: Any, digits: int = 4) -> str:
    """A number as short text (``-`` for NaN/None)."""
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return "-"
    return f"{f:.{digits}g}"


def table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    """An HTML table; ``rows`` hold already-escaped HTML cells."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _col(ds: xr.Dataset | None, name: str, i: int, default=None):
    if ds is None or name not in ds.variables:
        return default
    return ds[name].values[i]


def _by_label(ds: xr.Dataset | None) -> dict[str, int]:
    if ds is None or "label" not in ds.variables:
        return {}
    return {str(lab): i for i, lab in enumerate(ds["label"].values)}


def _inertia_text(ds: xr.Dataset, i: int) -> str:
    parts = []
    for k in ("n_negative", "n_zero", "n_positive"):
        v = _col(ds, k, i)
        lo, hi = _col(ds, f"{k}_min", i), _col(ds, f"{k}_max", i)
        if v is None:
            return str(_col(ds, "inertia", i, "-"))
        parts.append(f"{int(lo)}-{int(hi)}" if lo is not None and hi is not None and lo != hi else str(int(v)))
    return "(" + ", ".join(parts) + ")"


# ---------------------------------------------------------------------------- strata table
def strata_rows(strata, basins, transitions) -> tuple[list[str], list[list[str]]]:
    """The strata table: one row per label met in any Dataset (strata first, then the others)."""
    nodes = transitions if transitions is not None and "node" in transitions.dims else None
    sources = [ds for ds in (strata, basins, nodes) if ds is not None and "label" in ds.variables]
    labels: list[str] = []
    for ds in sources:
        labels += [str(x) for x in ds["label"].values if str(x) not in labels]
    idx = {id(ds): _by_label(ds) for ds in sources}

    def first(name, lab):
        for ds in sources:
            i = idx[id(ds)].get(lab)
            if i is not None and name in ds.variables:
                return ds, i
        return None, None

    header = ["stratum", "kind", "rank", "critical value", "inertia (n-, n0, n+)", "manifold dim", "Morse-Bott",
              "stable codim"]
    if basins is not None:
        header.append("basin fraction [interval]")
    if nodes is not None:
        header += ["visits", "mean dwell"]
    rows = []
    for lab in labels:
        ds, i = first("kind", lab)
        kind = str(ds["kind"].values[i]) if ds is not None else "-"
        cells = [f'<span class="label">{esc(lab)}</span>',
                 f'<span class="kind" style="color:{_KIND_COLOURS.get(kind, "#333")}">{esc(kind)}</span>']
        for name in ("rank", "critical_value"):
            ds, i = first(name, lab)
            cells.append(esc(fmt(ds[name].values[i])) if ds is not None else "-")
        ds, i = first("n_negative", lab)
        cells.append(esc(_inertia_text(ds, i)) if ds is not None else "-")
        for name in ("manifold_dim", "morse_bott", "stable_codim"):
            ds, i = first(name, lab)
            cells.append(esc(fmt(ds[name].values[i])) if ds is not None else "-")
        if basins is not None:
            i = idx[id(basins)].get(lab)
            if i is None or "fraction" not in basins:
                cells.append("-")
            else:
                f, lo, hi = (_col(basins, n, i) for n in ("fraction", "fraction_low", "fraction_high"))
                cells.append(esc(f"{fmt(f, 3)} [{fmt(lo, 3)}, {fmt(hi, 3)}]"))
        if nodes is not None:
            i = idx[id(nodes)].get(lab)
            cells += ["-", "-"] if i is None else [esc(fmt(_col(nodes, "visits", i))),
                                                   esc(fmt(_col(nodes, "node_mean_dwell", i)))]
        rows.append(cells)
    return header, rows


# ---------------------------------------------------------------------------- graph
def _dwell_histograms(tr: xr.Dataset) -> dict[str, dict]:
    """Per node label: histogram of the dwell times t_exit - t_enter of its non-final visits."""
    out: dict[str, dict] = {}
    if "stratum" not in tr.variables or "t_enter" not in tr.variables:
        return out
    lab = np.array([str(x) for x in tr["stratum"].values])
    dwell = np.asarray(tr["t_exit"].values, float) - np.asarray(tr["t_enter"].values, float)
    final = np.asarray(tr["final"].values, bool) if "final" in tr.variables else np.zeros(len(lab), bool)
    for name in np.unique(lab):
        d = dwell[(lab == name) & ~final & np.isfinite(dwell)]
        if d.size == 0:
            out[str(name)] = {"n": 0, "x": [], "y": [], "w": []}
            continue
        counts, edges = np.histogram(d, bins=int(min(12, max(1, d.size))))
        out[str(name)] = {"n": int(d.size), "x": ((edges[:-1] + edges[1:]) / 2).tolist(), "y": counts.tolist(),
                          "w": np.diff(edges).tolist()}
    return out


def _theory_by_edge(tr: xr.Dataset, src: str, tgt: str, learned: dict[str, str]) -> tuple[Any, Any]:
    if "theory_source" not in tr.variables:
        return None, None
    ls, lt = learned.get(src), learned.get(tgt)
    for k in range(tr.sizes["step"]):
        if str(tr["theory_source"].values[k]) == ls and str(tr["theory_target"].values[k]) == lt:
            return tr["theory_t_jump"].values[k], _col(tr, "observed_t_jump", k)
    return None, None


def graph_figure(tr: xr.Dataset, strata: xr.Dataset | None):
    """The saddle-to-saddle graph: nodes at (rank, critical value), edges with hover text.

    Returns (figure, side-panel data: {"hist": per-node dwell histograms}).
    """
    import plotly.graph_objects as go

    labels = [str(x) for x in tr["label"].values]
    n = len(labels)
    ranks = np.asarray(tr["rank"].values, float) if "rank" in tr.variables else np.full(n, -1.0)
    by_rank = bool(np.all(ranks >= 0))
    x = ranks.copy() if by_rank else np.asarray(tr["n_negative"].values, float)
    y = np.asarray(tr["critical_value"].values, float)
    seen: dict[tuple, int] = {}
    for i in range(n):  # spread nodes sharing a place
        key = (x[i], round(float(y[i]), 9))
        seen[key] = seen.get(key, 0) + 1
        x[i] += 0.12 * (seen[key] - 1)
    pos = {lab: (x[i], y[i]) for i, lab in enumerate(labels)}
    sidx = _by_label(strata)
    learned = {lab: str(_col(tr, "learned", i, "")) for i, lab in enumerate(labels)}
    kinds = [str(_col(tr, "kind", i, "-")) for i in range(n)]
    hover = []
    for i, lab in enumerate(labels):
        j = sidx.get(lab)
        inertia = _inertia_text(strata, j) if j is not None else _inertia_text(tr, i)
        hover.append(f"<b>{esc(lab)}</b><br>kind: {esc(kinds[i])}<br>inertia (n-, n0, n+): {esc(inertia)}"
                     f"<br>critical value: {fmt(y[i])}<br>visits: {fmt(_col(tr, 'visits', i))}"
                     f"<br>mean dwell: {fmt(_col(tr, 'node_mean_dwell', i))}")
    fig = go.Figure()
    ex, ey, mx, my, mtext, mdata = [], [], [], [], [], []
    n_edges = tr.sizes.get("edge", 0)
    for e in range(n_edges):
        s, t = str(tr["source"].values[e]), str(tr["target"].values[e])
        if s not in pos or t not in pos:
            continue
        (x0, y0), (x1, y1) = pos[s], pos[t]
        ex += [x0, x1, None]
        ey += [y0, y1, None]
        th, ob = _theory_by_edge(tr, s, t, learned)
        p, lo, hi = (_col(tr, k, e) for k in ("probability", "probability_low", "probability_high"))
        text = (f"<b>{esc(s)} → {esc(t)}</b><br>count: {fmt(_col(tr, 'count', e))}"
                f"<br>probability: {fmt(p, 3)} [{fmt(lo, 3)}, {fmt(hi, 3)}]"
                f"<br>mean jump time observed: {fmt(_col(tr, 'mean_t_jump', e))}"
                f"<br>jump time theory: {fmt(th)} (observed along the theory path: {fmt(ob)})")
        mx.append((x0 + x1) / 2)
        my.append((y0 + y1) / 2)
        mtext.append(text)
        mdata.append(f"edge:{e}")
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#999", "width": 2}, hoverinfo="skip",
                             showlegend=False))
    fig.add_trace(go.Scatter(x=mx, y=my, mode="markers", marker={"symbol": "diamond", "size": 11, "color": "#555"},
                             text=mtext, hovertemplate="%{text}<extra></extra>", customdata=mdata,
                             name="transition (hover/click)"))
    visits = np.asarray(tr["visits"].values, float) if "visits" in tr.variables else np.ones(n)
    size = 14 + 16 * np.sqrt(visits / max(1.0, float(np.nanmax(visits)) if n else 1.0))
    fig.add_trace(go.Scatter(x=x, y=y, mode="markers+text", text=labels, textposition="top center",
                             marker={"size": size, "color": [_KIND_COLOURS.get(k, "#333") for k in kinds],
                                         "line": {"color": "#222", "width": 1}},
                             hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
                             customdata=[f"node:{lab}" for lab in labels], name="stratum (click: dwell times)"))
    fig.update_layout(
        title="Saddle-to-saddle graph",
        xaxis_title="rank of the end-to-end map" if by_rank else "Morse index n- (rank not defined)",
        yaxis_title="critical value", height=480, margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.2}, template="plotly_white",
    )
    edges_info = {d: t for d, t in zip(mdata, mtext)}
    return fig, {"hist": _dwell_histograms(tr), "edges": edges_info}


# ---------------------------------------------------------------------------- basins
def basins_figure(b: xr.Dataset):
    """Basin fractions with their intervals; a second figure by horizon when present."""
    import plotly.graph_objects as go

    labels = [str(x) for x in b["label"].values]
    f = np.asarray(b["fraction"].values, float)
    lo = np.asarray(b["fraction_low"].values, float) if "fraction_low" in b else f
    hi = np.asarray(b["fraction_high"].values, float) if "fraction_high" in b else f
    extra = [k for k in ("unconverged", "diverged", "unclassified", "in_transit") if f"fraction_{k}" in b
             and b[f"fraction_{k}"].ndim == 0]
    for k in extra:
        labels.append(k)
        f = np.append(f, float(b[f"fraction_{k}"]))
        lo = np.append(lo, float(b.get(f"fraction_{k}_low", b[f"fraction_{k}"])))
        hi = np.append(hi, float(b.get(f"fraction_{k}_high", b[f"fraction_{k}"])))
    kinds = [str(v) for v in b["kind"].values] if "kind" in b.variables else []
    colours = [_KIND_COLOURS.get(k, "#457b9d") for k in kinds] + ["#bbb"] * len(extra)
    figs = [go.Figure(go.Bar(x=labels, y=f, marker_color=colours,
                             error_y={"type": "data", "array": hi - f, "arrayminus": f - lo},
                             hovertemplate="%{x}: %{y:.3g}<extra></extra>"))]
    n = int(b.sizes.get("sample", 0))
    figs[0].update_layout(title=f"Basin fractions ({n} samples, interval {b.attrs.get('ci_method', '')} "
                                f"{b.attrs.get('ci_level', '')})", yaxis_title="fraction", height=380,
                          template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 50})
    if "fraction_by_horizon" in b and "horizon" in b["fraction_by_horizon"].dims:
        fb = b["fraction_by_horizon"].transpose("horizon", ...)
        h = np.asarray(b["horizon"].values, float)
        fig = go.Figure()
        for j, lab in enumerate(str(x) for x in b["label"].values):
            err = {}
            if "fraction_by_horizon_low" in b:
                yl = b["fraction_by_horizon_low"].transpose("horizon", ...).values[:, j]
                yh = b["fraction_by_horizon_high"].transpose("horizon", ...).values[:, j]
                err = {"error_y": {"type": "data", "array": yh - fb.values[:, j], "arrayminus": fb.values[:, j] - yl}}
            fig.add_trace(go.Scatter(x=h, y=fb.values[:, j], mode="lines+markers", name=lab, **err))
        if "fraction_in_transit" in b and b["fraction_in_transit"].dims == ("horizon",):
            fig.add_trace(go.Scatter(x=h, y=b["fraction_in_transit"].values, mode="lines", name="in transit",
                                     line={"dash": "dot", "color": "#888"}))
        fig.update_layout(title="Basin fractions by horizon", xaxis_title="horizon (flow time)",
                          xaxis_type="log" if np.all(h > 0) else "linear", yaxis_title="fraction", height=380,
                          template="plotly_white")
        figs.append(fig)
    return figs


# ---------------------------------------------------------------------------- loss curves
def loss_figure(tr: xr.Dataset, n_curves: int = 6):
    """Loss curves of the first ``n_curves`` trajectories, with the visited critical values."""
    import plotly.graph_objects as go

    t = np.asarray(tr["time"].values, float)
    loss = np.asarray(tr["loss"].transpose("sample", "time").values, float)
    keep = t > 0  # log time axis; the loss axis stays linear so that the plateaus read as critical values
    fig = go.Figure()
    for j in range(min(n_curves, loss.shape[0])):
        path = str(_col(tr, "path", j, ""))
        fig.add_trace(go.Scatter(x=t[keep], y=loss[j, keep], mode="lines", name=f"trajectory {j}",
                                 hovertemplate=f"trajectory {j}<br>t = %{{x:.3g}}<br>loss = %{{y:.4g}}"
                                               f"<br>path: {esc(path)}<extra></extra>"))
    if "critical_value" in tr.variables and "label" in tr.variables:
        for lab, c in zip(tr["label"].values, tr["critical_value"].values):
            if np.isfinite(c):
                fig.add_hline(y=float(c), line={"dash": "dot", "color": "#aaa", "width": 1},
                              annotation_text=str(lab), annotation_position="right")
    fig.update_layout(title="Loss along a few trajectories (dotted: critical values of the visited strata)",
                      xaxis_title="flow time t", yaxis_title="loss", xaxis_type="log",
                      height=420, template="plotly_white")
    return fig


# ---------------------------------------------------------------------------- claims
def _md_cells(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [c.replace("\\|", "|").strip() for c in cells]


def claims_rows(claims) -> list[dict[str, str]]:
    """Rows {source, statement, measured, problems, verdict} from a claims Dataset, a list of
    :class:`flowgeom.audit.Claim` or the text of ``claims.md``."""
    if claims is None:
        return []
    if isinstance(claims, xr.Dataset):
        names = ("source", "statement", "measured", "problems", "verdict")
        return [{k: str(claims[k].values[i]) if k in claims else "" for k in names}
                for i in range(claims.sizes.get("claim", 0))]
    if isinstance(claims, str):
        lines = [ln for ln in claims.splitlines() if ln.strip().startswith("|")]
        if len(lines) < 2:
            return []
        head = [h.lower() for h in _md_cells(lines[0])]
        rows = []
        for ln in lines[2:]:
            cells = [c.replace("**", "") for c in _md_cells(ln)]
            row = dict(zip(head, cells))
            row["source"] = row.pop("claim", row.get("source", ""))
            rows.append(row)
        return rows
    return [{k: str(getattr(c, k, "")) for k in ("source", "statement", "measured", "problems", "verdict")}
            for c in claims]


def claims_table(rows: list[dict[str, str]]) -> str:
    body = []
    for r in rows:
        v = r.get("verdict", "")
        body.append([f"<b>{esc(r.get('source', ''))}</b>",
                     f'<span class="verdict {_VERDICT_CLASS.get(v, "")}">{esc(v)}</span>',
                     esc(r.get("statement", "")),
                     (f"<details><summary>measured</summary>{esc(r.get('measured', ''))}"
                     f"<p><i>{esc(r.get('problems', ''))}</i></p></details>")])
    return table(["claim", "verdict", "statement", "measured"], body, "claims")


# ---------------------------------------------------------------------------- provenance
_PROV_FIRST = ("flowgeom_version", "source", "history", "seed", "widths", "singular_values", "model", "n_samples",
               "n_trajectories", "init", "init_scale", "integrator", "method", "tolerances", "ci_method", "ci_level")
_PROV_SKIP = {"Conventions", "references", "title", "flowgeom_kind", "_flowgeom_attr_types"}


def provenance_table(datasets: dict[str, xr.Dataset], extra: dict | None) -> str:
    rows = []
    for key, value in (extra or {}).items():
        rows.append([esc("report"), esc(key), esc(_short(value))])
    for name, ds in datasets.items():
        keys = [k for k in _PROV_FIRST if k in ds.attrs] + sorted(
            k for k in ds.attrs if k not in _PROV_FIRST and k not in _PROV_SKIP)
        rows += [[esc(name), esc(k), esc(_short(ds.attrs[k]))] for k in keys]
    return table(["Dataset", "attribute", "value"], rows, "prov")


def _short(v, width: int = 240) -> str:
    if isinstance(v, (dict, list)):
        try:
            v = json.dumps(v, default=str)
        except (TypeError, ValueError):
            v = str(v)
    text = " ".join(str(v).split())
    return text if len(text) <= width else text[: width - 3] + "..."
