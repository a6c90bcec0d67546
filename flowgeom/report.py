r"""``report.html``: the atlas as one self-contained, interactive page.

:func:`write_report` turns the atlas Datasets (any subset of ``strata``, ``basins``,
``transitions``, ``claims``) into ONE HTML file with its scripts, styles and figures inline, so
that it opens offline and can be mailed: the strata table; the saddle-to-saddle graph of the
gradient flow :math:`\dot\theta = -\nabla L(\theta)` (nodes at (rank, critical value); hover a node
for its kind, inertia range, visits and mean dwell, click it for its dwell-time histogram; hover or
click an edge for its count, probability with interval and jump time, theory (Saxe et al. 2014)
vs observed); the basin fractions with their intervals (and by horizon when the basins Dataset
has ``fraction_by_horizon``); the loss curves of a few trajectories; the claims table with the
verdicts; the provenance. Figures are plotly ``graph_objects`` (plotly.js inlined once, in the
page head). :func:`report_from_directory` does the same from the files of ``flowgeom atlas``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from flowgeom import _report_parts as parts
from flowgeom._version import __version__

__all__ = ["REPORT_KINDS", "report_from_directory", "write_report"]

REPORT_KINDS = ("strata", "basins", "transitions", "claims")
"""The Datasets a report shows (file ``<kind>.nc`` in a directory)."""

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1d3557;color:#fff;padding:14px 24px}header h1{margin:0;font-size:1.4em}
header p{margin:4px 0 0;opacity:.85}nav a{color:#fff;margin-right:14px;font-size:.9em}
main{padding:8px 24px 40px;max-width:1400px}section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;
margin:16px 0;padding:8px 16px 16px}h2{font-size:1.15em;border-bottom:1px solid #eee;padding-bottom:4px}
table{border-collapse:collapse;font-size:.88em;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f1f3f5}.label{font-family:monospace;font-weight:600}
.verdict{font-weight:600;white-space:nowrap}.verdict.ok{color:#2a7a2a}.verdict.warn{color:#b5651d}
.verdict.bad{color:#b00020}.graph-wrap{display:flex;gap:12px;flex-wrap:wrap}.graph-main{flex:3 1 560px;min-width:0}
.side{flex:1 1 280px;border-left:3px solid #e9ecef;padding-left:12px;font-size:.9em}
.note{color:#666;font-size:.88em}.claims td:nth-child(3){max-width:420px}.prov td:nth-child(3){font-family:monospace;
word-break:break-all}#fg-errors:empty{display:none}#fg-errors{color:#b00020;white-space:pre-wrap}
"""

# Collects script errors into the DOM (a headless browser reads them back); before any other script.
_ERROR_COLLECTOR = """
window.__fgErrors=[];function __fgErr(m){window.__fgErrors.push(m);var d=document.getElementById('fg-errors');
if(d){d.textContent=window.__fgErrors.join('\\n');}}
window.addEventListener('error',function(e){__fgErr('error: '+(e.message||e));});
window.addEventListener('unhandledrejection',function(e){__fgErr('unhandled rejection: '+(e.reason||e));});
"""

# Click on a node: its dwell-time histogram in the side panel; click on an edge marker: its numbers.
# A URL ending in #fg-click=node:<label> (or edge:<k>) replays a click (links to a node; browser tests).
_CLICK_JS = """
(function(){var gd=document.getElementById('{plot_id}');var data=JSON.parse(
document.getElementById('fg-graph-data').textContent);
gd.on('plotly_click',function(ev){if(!ev||!ev.points||!ev.points.length){return;}
var cd=String(ev.points[0].customdata||'');var info=document.getElementById('fg-side-info');
var plot=document.getElementById('fg-side-plot');
if(cd.indexOf('node:')===0){var lab=cd.slice(5);var h=data.hist[lab]||{n:0,x:[],y:[],w:[]};
info.textContent='Stratum '+lab+': '+h.n+' completed visits (final visits excluded).';
Plotly.react(plot,[{type:'bar',x:h.x,y:h.y,width:h.w,marker:{color:'#457b9d'},
hovertemplate:'dwell %{x:.3g}: %{y}<extra></extra>'}],{title:{text:'dwell times at '+lab},
xaxis:{title:{text:'dwell time (flow time)'}},yaxis:{title:{text:'visits'}},height:300,
margin:{l:50,r:10,t:40,b:45}},{displayModeBar:false,responsive:true});}
else if(cd.indexOf('edge:')===0){info.innerHTML=data.edges[cd]||'';Plotly.purge(plot);}});
var m=location.hash.match(/^#fg-click=(.+)$/);
if(m){gd.emit('plotly_click',{points:[{customdata:decodeURIComponent(m[1])}]});}})();
"""


_NAV = (("strata", "Strata"), ("graph", "Graph"), ("basins", "Basins"), ("loss", "Loss curves"),
        ("claims", "Claims"), ("provenance", "Provenance"))


def _figure_html(fig, div_id: str, post_script: str | None = None) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, post_script=post_script,
                       config={"displaylogo": False, "responsive": True})


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{parts.esc(title)}</h2>{body}</section>'


def _json_script(sid: str, obj: Any) -> str:
    text = json.dumps(obj).replace("</", "<\\/")
    return f'<script type="application/json" id="{sid}">{text}</script>'


def write_report(datasets: Mapping[str, xr.Dataset], path: str | os.PathLike, *, claims=None,
                 provenance: Mapping[str, Any] | None = None, title: str | None = None) -> Path:
    r"""Write the atlas as one self-contained HTML page.

    Parameters
    ----------
    datasets : mapping of str to xarray.Dataset
        Any subset of ``"strata"``, ``"basins"``, ``"transitions"`` (and ``"claims"``), as written by
        flowgeom for a deep linear network or a searched (nonlinear) atlas; other keys are ignored.
    path : str or PathLike
        The ``.html`` file to write (parent directories are created).
    claims : xarray.Dataset, list of flowgeom.audit.Claim, str or None, default None
        The audit: the ``claims`` Dataset, the Claim objects, or the text of ``claims.md``; None uses
        ``datasets["claims"]`` when present.
    provenance : mapping or None, default None
        Extra provenance rows shown first (e.g. the command line and the timings in seconds).
    title : str or None, default None
        Page title; None derives it from the problem (widths, singular values or model).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        A value of ``datasets`` is not an xarray Dataset.
    """
    ds = {k: v for k, v in dict(datasets).items() if k in REPORT_KINDS}
    for k, v in ds.items():
        if not isinstance(v, xr.Dataset):
            raise TypeError(f"`datasets[{k!r}]` must be an xarray.Dataset; got {type(v).__name__}.")
    if claims is None:
        claims = ds.get("claims")
    strata, basins, trans = ds.get("strata"), ds.get("basins"), ds.get("transitions")
    sections: list[str] = []

    header, rows = parts.strata_rows(strata, basins, trans)
    body = (parts.table(header, rows, "strata") if rows else '<p class="note">no strata in these Datasets</p>')
    sections.append(_section("strata", f"Strata ({len(rows)})", body))

    if trans is not None and "node" in trans.dims and trans.sizes["node"] > 0:
        fig, data = parts.graph_figure(trans, strata)
        # the data and the side panel come first: the click handler runs right after the plot is made
        body = ('<p class="note">Nodes at (rank, critical value), coloured by kind, sized by visits. Hover a node or '
                'an edge marker (diamond) for its numbers; click a node for its dwell-time histogram.</p>'
                + _json_script("fg-graph-data", data) + '<div class="graph-wrap"><div class="side" style="order:2">'
                '<h3>Selection</h3><div id="fg-side-info">Click a stratum or a transition.</div>'
                '<div id="fg-side-plot"></div></div><div class="graph-main" style="order:1">'
                + _figure_html(fig, "fg-graph", _CLICK_JS) + '</div></div>')
        sections.append(_section("graph", "Saddle-to-saddle graph", body))
    elif trans is not None:
        sections.append(_section("graph", "Saddle-to-saddle graph", '<p class="note">no visits detected</p>'))

    if basins is not None and "fraction" in basins and "label" in basins.variables:
        figs = parts.basins_figure(basins)
        body = "".join(_figure_html(f, f"fg-basins-{i}") for i, f in enumerate(figs))
        sections.append(_section("basins", "Basins of attraction", body))

    if trans is not None and "loss" in trans and "time" in trans.variables and trans.sizes.get("sample", 0) > 0:
        sections.append(_section("loss", "Loss curves", _figure_html(parts.loss_figure(trans), "fg-loss")))

    rows_c = parts.claims_rows(claims)
    if rows_c:
        sections.append(_section("claims", f"Claims of the paper ({len(rows_c)})", parts.claims_table(rows_c)))

    prov = {"report written by": f"flowgeom {__version__}", **dict(provenance or {})}
    sections.append(_section("provenance", "Provenance", parts.provenance_table(ds, prov)))

    if title is None:
        title = _title(strata, basins, trans)
    shown = "".join(sections)
    nav = "".join(f'<a href="#{sid}">{parts.esc(name)}</a>' for sid, name in _NAV if f'id="{sid}"' in shown)
    from plotly.offline import get_plotlyjs

    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{parts.esc(title)}</title>"
        f"<style>{_STYLE}</style><script>{_ERROR_COLLECTOR}</script>"
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
        f"<header><h1>{parts.esc(title)}</h1><p>flowgeom {parts.esc(__version__)} atlas report</p><nav>{nav}</nav>"
        "</header><main><div id=\"fg-errors\"></div>" + "".join(sections) + "</main></body></html>\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _title(*datasets) -> str:
    for ds in datasets:
        if ds is None:
            continue
        a = ds.attrs
        if "widths" in a:
            s = a.get("singular_values")
            model = a.get("activation") or a.get("model") or "deep linear network"
            return f"flowgeom atlas: {model}, widths {tuple(a['widths'])}" + (f", s = {tuple(s)}" if s else "")
    return "flowgeom atlas"


def report_from_directory(directory: str | os.PathLike, *, path: str | os.PathLike | None = None,
                          provenance: Mapping[str, Any] | None = None) -> Path:
    r"""Write ``report.html`` from the files of a ``flowgeom atlas --out DIR`` run.

    Reads whichever of ``strata.nc``, ``basins.nc``, ``transitions.nc`` and ``claims.nc`` exist
    (``claims.md`` when there is no ``claims.nc``) with :func:`flowgeom.io.load_dataset`.

    Parameters
    ----------
    directory : str or PathLike
        The atlas directory.
    path : str or PathLike or None, default None
        Where to write; None gives ``directory / "report.html"``.
    provenance : mapping or None, default None
        Extra provenance rows (see :func:`write_report`).

    Returns
    -------
    pathlib.Path
        The report written.

    Raises
    ------
    NotADirectoryError
        ``directory`` is not a directory.
    FileNotFoundError
        It holds none of the files above.
    """
    from flowgeom.io import load_dataset

    d = Path(directory)
    if not d.is_dir():
        raise NotADirectoryError(f"`directory` {str(d)!r} is not a directory (run `flowgeom atlas --out DIR` first).")
    datasets = {k: load_dataset(d / f"{k}.nc") for k in REPORT_KINDS if (d / f"{k}.nc").exists()}
    claims = None
    if "claims" not in datasets and (d / "claims.md").exists():
        claims = (d / "claims.md").read_text(encoding="utf-8")
    if not datasets and claims is None:
        raise FileNotFoundError(
            f"`directory` {str(d)!r} holds none of strata.nc, basins.nc, transitions.nc, claims.nc, claims.md.")
    return write_report(datasets, d / "report.html" if path is None else path, claims=claims,
                        provenance=provenance)
