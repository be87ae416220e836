"""Reports drawn from the store: `report.md`, the PNG figures and a single-file `report.html`.

`repdyn report RUN` re-draws everything from stored series, never from memory, so a report
can be regenerated for any past run. `repdyn compare RUN RUN ...` overlays several runs.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)

from repdyn import registry  # noqa: E402
from repdyn.bench.claims import Verdict  # noqa: E402
from repdyn.bench.config import flatten  # noqa: E402
from repdyn.bench.store import RunStore  # noqa: E402
from repdyn.bench.study import Figure  # noqa: E402
from repdyn.bench.view import RunView  # noqa: E402

_MAX_DEFAULT_PANELS = 24


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verdict_line(name: str, title: str, verdict: Verdict) -> str:
    """`G1 title: REPRODUCED — summary` (one line)."""
    return f"{name} {title}: {verdict.label} — {verdict.summary}"


def default_figures(view: RunView) -> list[Figure]:
    """One panel per series name, every arm overlaid (for studies without their own figures)."""
    names = sorted({n for arm in view.arms.values() for n in arm.names()})[:_MAX_DEFAULT_PANELS]
    if not names:
        return []
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        for arm in view.arms.values():
            s = arm.series(name)
            if len(s):
                ax.plot(s.steps, s.values, label=arm.name)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return [Figure("series", "All logged series", "Every series of every arm against its step.", fig)]


def _claims_with_titles(store: RunStore, run_id: str, study_name: str) -> list[tuple[str, str, Verdict]]:
    study = registry.get(study_name)
    titles = {c.name: c.title for c in study.claims}
    return [
        (c["name"], titles.get(c["name"], ""), Verdict(c["ok"], c["summary"], c["numbers"]))
        for c in store.claims(run_id)
    ]


def write_report(store: RunStore, run_ref: str) -> Path:
    """Draw the figures of a study run and write `report.md`, PNGs and `report.html` in its folder."""
    record = store.resolve(run_ref)
    if record.parent is not None:
        record = store.get_run(record.parent)
    study = registry.get(record.study)
    view = RunView(store, record, study.config)
    out = store.run_dir(record.id)
    figures = study.figures(view) if study.figures else default_figures(view)
    images = []
    for figure in figures:
        path = out / f"{figure.name}.png"
        figure.figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure.figure)
        store.add_artifact(record.id, "figure", path, sha256_file(path))
        images.append((figure, path))
    claims = _claims_with_titles(store, record.id, study.name)
    finals = {arm.name: arm.final() for arm in view.arms.values()}
    md = _markdown(study.title, study.paper, record, claims, images, finals)
    md_path = out / "report.md"
    md_path.write_text(md)
    html_path = out / "report.html"
    html_path.write_text(_html(study.title, study.paper, record, claims, images, finals))
    for kind, path in (("report-md", md_path), ("report-html", html_path)):
        store.add_artifact(record.id, kind, path, sha256_file(path))
    return html_path


def _header_rows(record) -> list[tuple[str, str]]:
    wall = f"{record.wall_s:.1f} s" if record.wall_s is not None else "-"
    versions = ", ".join(f"{k} {v}" for k, v in record.versions.items())
    return [
        ("run", record.id), ("status", record.status), ("preset", record.preset), ("seed", str(record.seed)),
        ("wall time", wall), ("device", record.device or "cpu"), ("versions", versions),
    ]


def _fmt(value: float) -> str:
    return "nan" if value != value else f"{value:.6g}"


def _markdown(title, paper, record, claims, images, finals) -> str:
    lines = [f"# {record.id}: {title}", "", f"*{paper}*", ""]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in _header_rows(record)]
    if record.error:
        lines += ["", f"**Error:** {record.error}"]
    lines += ["", "## Claims", ""]
    if claims:
        lines += ["| claim | verdict | numbers |", "|---|---|---|"]
        lines += [f"| {n} {t} | **{v.label}** | {v.summary} |" for n, t, v in claims]
    else:
        lines.append("No verdicts (the run did not finish, or the study states no claims).")
    lines += ["", "## Figures", ""]
    for figure, path in images:
        lines += [f"### {figure.title}", "", f"![{figure.title}]({path.name})", "", figure.caption, ""]
    lines += ["## Final values", ""]
    for arm, values in finals.items():
        lines += [f"**{arm}**: " + ", ".join(f"`{k}` {_fmt(v)}" for k, v in sorted(values.items())), ""]
    lines += ["## Config", "", "```json", json.dumps(record.config, indent=2), "```", ""]
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.ok{color:#176f2c;font-weight:bold}.bad{color:#b00020;font-weight:bold}.na{color:#777;font-weight:bold}
img{max-width:100%}pre{background:#f6f6f6;padding:1em;overflow:auto}figcaption{color:#555}
"""


def _html(title, paper, record, claims, images, finals) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(record.id)}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{esc(record.id)}: {esc(title)}</h1><p><em>{esc(paper)}</em></p><table>"]
    parts += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _header_rows(record)]
    parts.append("</table>")
    if record.error:
        parts.append(f"<p class='bad'>Error: {esc(record.error)}</p>")
    parts.append("<h2>Claims</h2><table><tr><th>claim</th><th>verdict</th><th>numbers</th></tr>")
    for name, claim_title, verdict in claims:
        css = {True: "ok", False: "bad", None: "na"}[verdict.ok]
        parts.append(f"<tr><td>{esc(name)} {esc(claim_title)}</td><td class='{css}'>{verdict.label}</td>"
                     f"<td>{esc(verdict.summary)}</td></tr>")
    parts.append("</table><h2>Figures</h2>")
    for figure, path in images:
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<figure><h3>{esc(figure.title)}</h3><img src='data:image/png;base64,{data}'>"
                     f"<figcaption>{esc(figure.caption)}</figcaption></figure>")
    parts.append("<h2>Final values</h2>")
    for arm, values in finals.items():
        rows = "".join(f"<tr><td>{esc(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in sorted(values.items()))
        parts.append(f"<h3>{esc(arm)}</h3><table>{rows}</table>")
    parts.append(f"<h2>Config</h2><pre>{esc(json.dumps(record.config, indent=2))}</pre></body></html>")
    return "".join(parts)


def write_comparison(store: RunStore, run_refs: list[str]) -> tuple[Path, str]:
    """Overlay the series of several study runs; returns the HTML path and a text summary table."""
    records = []
    for ref in run_refs:
        record = store.resolve(ref)
        records.append(store.get_run(record.parent) if record.parent else record)
    views = [RunView(store, r, registry.get(r.study).config) for r in records]
    keyed = [{f"{arm.name}/{n}": arm.series(n) for arm in v.arms.values() for n in arm.names()} for v in views]
    shared = sorted(set.intersection(*(set(k) for k in keyed))) if keyed else []
    shown = shared[:_MAX_DEFAULT_PANELS]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", "+".join(r.id for r in records))[:120]
    out = store.root / "compare" / slug
    out.mkdir(parents=True, exist_ok=True)
    images = []
    if shown:
        cols = min(4, len(shown))
        rows = math.ceil(len(shown) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
        for ax, name in zip(axes.flat, shown, strict=False):
            for record, series in zip(records, keyed, strict=True):
                s = series[name]
                ax.plot(s.steps, s.values, label=record.id)
            ax.set_title(name, fontsize=9)
        for ax in list(axes.flat)[len(shown):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        path = out / "compare.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        images.append(path)
    text = comparison_table(store, records, keyed, shared)
    esc = html.escape
    page = [f"<!doctype html><html><head><meta charset='utf-8'><style>{_CSS}</style></head><body>",
            f"<h1>Comparison: {esc(', '.join(r.id for r in records))}</h1><pre>{esc(text)}</pre>"]
    page += [f"<img src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>" for p in images]
    page.append("</body></html>")
    html_path = out / "compare.html"
    html_path.write_text("".join(page))
    return html_path, text


def comparison_table(store: RunStore, records, keyed, shared) -> str:
    """Plain-text table: one column per run, rows for settings that differ, finals and claims."""
    header = ["", *[r.id for r in records]]
    rows = [["study", *[r.study for r in records]], ["status", *[r.status for r in records]],
            ["seed", *[str(r.seed) for r in records]]]
    flat = [flatten(r.config) for r in records]
    for key in sorted(set().union(*flat)):
        values = [str(f.get(key, "-")) for f in flat]
        if len(set(values)) > 1:
            rows.append([key, *values])
    for name in shared:
        rows.append([name, *[_fmt(series[name].last) for series in keyed]])
    claim_names: list[str] = []
    verdicts = []
    for r in records:
        found = {c["name"]: c for c in store.claims(r.id)}
        verdicts.append(found)
        claim_names += [n for n in found if n not in claim_names]
    for name in claim_names:
        cells = [Verdict(v[name]["ok"], "").label if name in v else "-" for v in verdicts]
        rows.append([f"claim {name}", *cells])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows])

