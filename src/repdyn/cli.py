"""The `repdyn` command: list | run | resume | runs | report | compare | export | generate | bench.

Exit status: 0 when runs finished (whatever the verdicts), 1 when a run failed, 2 for bad input
(one line on stderr naming what is wrong), 130 when interrupted (resume with `repdyn resume`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repdyn.bench.errors import UserError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse that raises UserError (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(message)


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--store", help="run store file (default $REPDYN_STORE or ./runs/repdyn.db)")
    parser = _Parser(prog="repdyn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the studies, one line each", parents=[common])

    run = sub.add_parser("run", help="run a study", parents=[common])
    run.add_argument("study")
    run.add_argument("--preset", default="default", help="smoke (seconds), default (minutes), paper, ...")
    seeds = run.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=0)
    seeds.add_argument("--seeds", help="several seeds: 0-4 or 0,3,7 (one run each)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key; a comma list runs one setting each")
    run.add_argument("--config", help="TOML file of overrides (applied before --set)")
    run.add_argument("--workers", type=int, default=1, help="parallel worker processes for arms and settings")
    run.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda or cuda:N")
    run.add_argument("--autocast", default="off", help="off, or bf16 for studies whose paper trained in bf16")
    _backend_flags(run)
    run.add_argument("--keys", action="store_true", help="print the config keys of the study and exit")
    run.add_argument("--dry-run", action="store_true", help="print the resolved settings and arms, run nothing")
    _output_flags(run)

    resume = sub.add_parser("resume", help="continue an interrupted or killed run", parents=[common])
    resume.add_argument("run")
    resume.add_argument("--workers", type=int, default=1)
    _backend_flags(resume)
    _output_flags(resume)

    runs = sub.add_parser("runs", help="list recorded runs with status and verdicts", parents=[common])
    runs.add_argument("--study")
    runs.add_argument("--limit", type=int, default=30)

    report = sub.add_parser("report", help="write report.md / report.html of a run", parents=[common])
    report.add_argument("run")

    compare = sub.add_parser("compare", help="overlay the series of several runs", parents=[common])
    compare.add_argument("runs", nargs="+")

    export = sub.add_parser("export", help="write runs as TensorBoard events, CSV or Parquet", parents=[common])
    export.add_argument("runs", nargs="+")
    export.add_argument("--to", nargs="+", required=True, metavar="FORMAT [DEST]",
                        help="tensorboard DIR | csv FILE | parquet FILE")

    generate = sub.add_parser("generate", help="sample text from a trained language-model arm", parents=[common])
    generate.add_argument("run", help="a study run (its default LM arm) or an arm id like griffin-3/hawk")
    generate.add_argument("--prompt", required=True)
    generate.add_argument("--arm", help="which LM arm of a study run")
    generate.add_argument("--max-new-tokens", type=int, default=200)
    generate.add_argument("--temperature", type=float, default=1.0)
    generate.add_argument("--top-k", type=int)
    generate.add_argument("--top-p", type=float)
    generate.add_argument("--seed", type=int, default=0)

    bench = sub.add_parser("bench", help="side-by-side performance ratios", parents=[common])
    bench.add_argument("name", nargs="?")
    bench.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _backend_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="local worker processes (default) or Ray tasks")
    parser.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")


def _output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    parser.add_argument("--no-report", action="store_true", help="skip writing the report")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `repdyn` console script."""
    try:
        args = _parser().parse_args(argv)
        handler = {
            "list": cmd_list, "run": cmd_run, "resume": cmd_resume, "runs": cmd_runs,
            "report": cmd_report, "compare": cmd_compare, "export": cmd_export, "generate": cmd_generate,
            "bench": cmd_bench,
        }[args.command]
        return handler(args)
    except UserError as err:
        print(f"repdyn: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _store(args: argparse.Namespace):
    from repdyn.bench.store import RunStore

    return RunStore(RunStore.default_path(args.store))


def cmd_list(args: argparse.Namespace) -> int:
    from repdyn import registry

    studies = registry.all_studies()
    width = max((len(s.name) for s in studies), default=0)
    for study in studies:
        print(f"{study.name.ljust(width)}  {study.summary}  [{study.paper}]")
        for preset in study.preset_names():
            wall = study.wall_times.get(preset)
            print(f"{''.ljust(width)}    --preset {preset}" + (f": {wall}" if wall else ""))
    return EXIT_OK


def parse_seeds(text: str) -> list[int]:
    """`0-4` -> [0..4], `1,5,9` -> [1, 5, 9]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                low, high = part.split("-", 1)
                seeds += list(range(int(low), int(high) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise UserError(f"--seeds {text!r}: expected a range like 0-4 or a list like 0,3,7") from None
    if not seeds:
        raise UserError(f"--seeds {text!r}: no seeds")
    return seeds


def resolve_settings(study, preset: str, config_file: str | None, assignments: list[str]) -> list[Any]:
    """The study configs to run: preset, then TOML file, then each `--set` sweep combination."""
    from repdyn.bench import config as cfg

    if preset not in study.presets:
        raise UserError(f"--preset {preset!r}: {study.name} has presets {', '.join(study.preset_names())}")
    base = cfg.override(study.config(), study.presets[preset], source=f"preset {preset}: ", check=False)
    if config_file:
        base = cfg.override(base, cfg.load_toml(config_file), source=f"{config_file}: ", check=False)
    return [cfg.override(base, setting, source="--set ") for setting in cfg.expand_sweep(assignments)]


def cmd_run(args: argparse.Namespace) -> int:
    from repdyn import registry
    from repdyn.bench import config as cfg
    from repdyn.bench.precision import check_autocast
    from repdyn.bench.runner import create_study_run, resolve_device

    study = registry.get(args.study)
    if args.keys:
        preset = study.presets.get(args.preset, {})
        print("\n".join(cfg.help_lines(study.config, cfg.override(study.config(), preset, check=False))))
        return EXIT_OK
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: expected an integer >= 1")
    check_autocast(study.name, study.config, args.autocast)
    extra = [f"autocast={args.autocast}"] if args.autocast != "off" else []
    settings = resolve_settings(study, args.preset, args.config, [*args.set, *extra])
    seeds = parse_seeds(args.seeds) if args.seeds else [args.seed]
    device = resolve_device(args.device, study.cuda)
    if args.dry_run:
        for config in settings:
            arms = ", ".join(study.arms(config))
            print(f"{study.name} preset={args.preset} seeds={seeds} arms=[{arms}]")
            print(json.dumps(cfg.to_dict(config), indent=2))
        return EXIT_OK
    if study.check is not None:
        for config in settings:
            study.check(config)
    store = _store(args)
    runs: list = []
    for config in settings:
        for seed in seeds:
            sweep = runs[0].parent.id if runs else None
            runs.append(create_study_run(store, study, args.preset, config, seed, device=device, sweep=sweep))
    return _execute(store, [r.parent.id for r in runs], args)


def cmd_resume(args: argparse.Namespace) -> int:
    from repdyn.bench.runner import prepare_resume

    store = _store(args)
    record = store.resolve(args.run)
    parent = store.get_run(record.parent) if record.parent else record
    if parent.status == "finished":
        print(f"{parent.id} already finished; nothing to resume")
        return EXIT_OK
    todo = prepare_resume(store, parent)
    return _execute(store, [parent.id], args, arm_ids=todo)


def _execute(store, run_ids: list[str], args: argparse.Namespace, arm_ids: list[str] | None = None) -> int:
    """Train the arms of the given study runs, finalize them, print verdicts, reports and JSON."""
    from repdyn import registry
    from repdyn.bench.context import install_signal_handlers
    from repdyn.bench.progress import make_progress
    from repdyn.bench.runner import ArmOutcome, assign_threads, execute_arms, finalize

    if arm_ids is None:
        arm_ids = [a.id for rid in run_ids for a in store.children(rid)]
    install_signal_handlers()
    progress = make_progress(args.quiet)
    for rid in run_ids:
        store.set_status(rid, "running")
    try:
        if args.backend == "ray":
            from repdyn.bench.ray_backend import execute_arms_ray

            statuses = execute_arms_ray(store, arm_ids, progress, address=args.address,
                                        num_cpus=args.workers if args.workers > 1 else None)
            outcomes = {arm: ArmOutcome(status) for arm, status in statuses.items()}
        else:
            assign_threads(store, arm_ids, args.workers)
            outcomes = execute_arms(store, arm_ids, args.workers, progress)
    finally:
        progress.close()
    summaries = []
    for rid in run_ids:
        study = registry.get(store.get_run(rid).study)
        status = finalize(store, study, rid, outcomes)
        summaries.append(_print_outcome(store, study, rid, status, write=not args.no_report))
    user_errors = [o for o in outcomes.values() if o.user_error]
    for outcome in user_errors:
        print(f"repdyn: error: {outcome.error}", file=sys.stderr)
    if args.json:
        print(json.dumps(summaries[0] if len(summaries) == 1 else {"runs": summaries}))
    statuses = {s["status"] for s in summaries}
    if user_errors:
        return EXIT_USAGE
    if "failed" in statuses:
        return EXIT_FAILED
    if "interrupted" in statuses:
        return EXIT_INTERRUPTED
    return EXIT_OK


def _print_outcome(store, study, run_id: str, status: str, write: bool) -> dict[str, Any]:
    """Print a run's verdicts (and write its report); return its JSON summary."""
    from repdyn.bench.claims import Verdict
    from repdyn.bench.progress import format_duration
    from repdyn.bench.runner import wall_seconds

    record = store.get_run(run_id)
    wall = wall_seconds(store, run_id)
    print(f"{run_id} {status} in {format_duration(wall)} (store {store.path})")
    titles = {c.name: c.title for c in study.claims}
    claims = store.claims(run_id)
    for c in claims:
        print(f"  {c['name']} {titles.get(c['name'], '')}: {Verdict(c['ok'], '').label} — {c['summary']}")
    if status != "finished":
        for arm in store.children(run_id):
            if arm.status != "finished":
                print(f"  {arm.id}: {arm.status}" + (f" ({arm.error})" if arm.error else ""))
        print(f"  continue with: repdyn resume {run_id}")
    if write and status == "finished":
        from repdyn.bench.report import write_report

        print(f"  report: {write_report(store, run_id)}")
    arms = store.children(run_id)
    final: dict[str, float] = {}
    for arm in arms:
        prefix = "" if len(arms) == 1 else f"{arm.arm}/"
        final.update({prefix + k: v for k, v in store.final_values(arm.id).items()})
    return {
        "run_id": run_id, "study": record.study, "preset": record.preset, "seed": record.seed,
        "status": status, "wall_s": round(wall, 3), "final": final,
        "claims": [{"name": c["name"], "ok": c["ok"], "summary": c["summary"]} for c in claims],
    }


def cmd_runs(args: argparse.Namespace) -> int:
    from repdyn.bench.claims import Verdict

    store = _store(args)
    for record in store.list_runs(args.study, args.limit):
        verdicts = " ".join(f"{c['name']}:{Verdict(c['ok'], '').label}" for c in store.claims(record.id))
        wall = f"{record.wall_s:.0f}s" if record.wall_s is not None else "-"
        print(f"{record.id:<24} {record.status:<11} {record.preset:<8} seed={record.seed:<4} {wall:>7}  {verdicts}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from repdyn.bench.report import write_report

    store = _store(args)
    print(write_report(store, args.run))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from repdyn.bench.report import write_comparison

    store = _store(args)
    path, table = write_comparison(store, args.runs)
    print(table)
    print(f"comparison: {path}")
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from repdyn import registry
    from repdyn.methods.lm import generate

    if args.temperature < 0 or (args.top_p is not None and not 0 < args.top_p <= 1) or args.max_new_tokens < 1:
        raise UserError("generate: expected --temperature >= 0, 0 < --top-p <= 1 and --max-new-tokens >= 1")
    store = _store(args)
    record = store.resolve(args.run)
    study = registry.get(record.study)
    if study.load_lm is None:
        raise UserError(f"{record.id}: study {study.name} trains no language model to sample from")
    extra = {"arm": args.arm} if args.arm else {}
    model, tokenizer = study.load_lm(store, record.id, **extra)
    print(args.prompt, end="", flush=True)
    for piece in generate(model, tokenizer, args.prompt, args.max_new_tokens, temperature=args.temperature,
                          top_k=args.top_k, top_p=args.top_p, seed=args.seed):
        print(piece, end="", flush=True)
    print()
    return EXIT_OK


EXPORT_DEFAULTS = {"tensorboard": "tensorboard", "csv": "series.csv", "parquet": "series.parquet"}


def cmd_export(args: argparse.Namespace) -> int:
    from repdyn.bench.export import export_csv, export_parquet, export_tensorboard

    fmt, *rest = args.to
    if fmt not in EXPORT_DEFAULTS or len(rest) > 1:
        raise UserError(f"--to {' '.join(args.to)}: expected tensorboard [DIR], csv [FILE] or parquet [FILE]")
    store = _store(args)
    dest = Path(rest[0]) if rest else store.root / "export" / EXPORT_DEFAULTS[fmt]
    if fmt == "tensorboard":
        files = export_tensorboard(store, args.runs, dest)
        print(f"wrote {len(files)} event file(s) under {dest}; view with: tensorboard --logdir {dest}")
    else:
        path = (export_csv if fmt == "csv" else export_parquet)(store, args.runs, dest)
        print(f"wrote {path}")
    return EXIT_OK


def benchmarks_dir() -> Path:
    """`$REPDYN_BENCHMARKS`, the checkout's `benchmarks/`, or `./benchmarks`."""
    import repdyn

    candidates = [os.environ.get("REPDYN_BENCHMARKS"), Path(repdyn.__file__).resolve().parents[2] / "benchmarks",
                  Path.cwd() / "benchmarks"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise UserError("no benchmarks/ folder found: run from a repdyn checkout or set REPDYN_BENCHMARKS")


def cmd_bench(args: argparse.Namespace) -> int:
    folder = benchmarks_dir()
    available = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    if args.name and args.name not in available:
        raise UserError(f"unknown benchmark {args.name!r}; available: {', '.join(available)}")
    status = EXIT_OK
    for name in [args.name] if args.name else available:
        spec = importlib.util.spec_from_file_location(f"repdyn_benchmark_{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {name}", flush=True)
        status = max(status, int(module.main(list(args.args or [])) or 0))
    return status


if __name__ == "__main__":
    sys.exit(main())
