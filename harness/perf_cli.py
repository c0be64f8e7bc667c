"""The performance commands of the harness command line: bench, compare, gate.

They only parse and forward (to harness.bench.scenarios, harness.report.compare and
harness.gate); harness.cli adds them to the `harness` group.
"""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from harness.adapters import adapter_factory
from harness.bench.floor import hop_floor, ping_floor
from harness.bench.peers import DEFAULT_QUEUES
from harness.bench.scenarios import Bench, bench_scaling, bench_sweep, bench_throughput
from harness.console import F, one_line_errors, out, status_line
from harness.fleet import REPO_ROOT
from harness.providers import check_provider
from harness.scenario import load_scenario

QUEUES_HELP = "Comma-separated queues, the baseline last (taskq,raw: taskq as a ratio of the raw ceiling)."


def _queues(spec: str) -> list[str]:
    queues = [q.strip() for q in spec.split(",") if q.strip()]
    if not queues:
        raise click.BadParameter("name at least one queue", param_hint="--queues")
    for queue in queues:
        adapter_factory(queue)
    return queues


def _numbers(spec: str, name: str) -> list[float]:
    try:
        values = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"a comma-separated list of numbers, got {spec!r}", param_hint=name) from None
    if not values or any(v <= 0 for v in values):
        raise click.BadParameter("positive numbers, at least one", param_hint=name)
    return values


def _command_line() -> str:
    return "harness " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _print_bench(bench: Bench) -> None:
    from harness.report.benchmarks import POINT_HEADER, X_NAMES, point_rows, write_bench_report  # noqa: PLC0415

    plots = write_bench_report(bench, _command_line())
    table = Table(title=f"{bench.kind}: {bench.scenario}")
    for column in (POINT_HEADER[0], X_NAMES.get(bench.kind, "x"), *POINT_HEADER[2:-1]):
        table.add_column(column)
    for row in point_rows(bench.points):
        table.add_row(*(str(c) for c in row[:-1]))
    out.print(table)
    for key, value in bench.summary.items():
        out.print(f"{key}: {value}", markup=False)
    out.print(f"report: {bench.folder / 'report.md'} (and report.html, {', '.join(plots)})", markup=False)


@click.group("bench")
def bench_group() -> None:
    """Scenario benchmarks: each queue measured side by side with the raw redis-py ceiling."""


def _bench_options(command: F) -> F:
    options = [
        click.option("--queues", default="taskq,raw", show_default=True, help=QUEUES_HELP),
        click.option("--seed", type=int, default=7, show_default=True),
        click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Seconds of load per run."),
        click.option(
            "--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports/bench"), show_default=True
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@bench_group.command("throughput")
@click.argument("scenario", default="throughput")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True, help="Runs per queue.")
@click.option("--tasks", type=click.IntRange(min=1), help="Tasks per run (the scenario's fixed amount of work).")
@click.option("--producers", type=click.IntRange(min=1))
@click.option("--consumers", type=click.IntRange(min=1))
@_bench_options
@one_line_errors
def throughput_command(
    scenario: str, repeat: int, tasks: int | None, producers: int | None, consumers: int | None, queues: str,
    seed: int, duration: float | None, out_dir: Path,
) -> None:  # fmt: skip
    """Maximum throughput of each queue: the same work, repeated, interleaved."""
    check_provider("local")
    chosen = load_scenario(scenario).with_run(
        tasks=tasks, producers=producers, consumers=consumers, duration_s=duration
    )
    _print_bench(bench_throughput(chosen, _queues(queues), repeat=repeat, seed=seed, out=out_dir, status=status_line()))


@bench_group.command("sweep")
@click.argument("scenario", default="latency")
@click.option("--rates", default="500,1000,2000,4000,8000,16000,32000", show_default=True,
              help="Offered tasks/s, in steps; the sweep stops once every queue is past its knee.")  # fmt: skip
@_bench_options
@one_line_errors
def sweep_command(scenario: str, rates: str, queues: str, seed: int, duration: float | None, out_dir: Path) -> None:
    """Open-loop rate sweep: the throughput-latency curve of each queue and its knee."""
    check_provider("local")
    chosen = load_scenario(scenario).with_run(duration_s=duration)
    steps, status = _numbers(rates, "--rates"), status_line()
    status("measuring this machine's loopback floor: paced PINGs, then XADD-to-XREADGROUP hops, 3 s each")
    floors = {"loopback_ping_ms": ping_floor(), "loopback_hop_ms": hop_floor(seconds=3.0)}
    bench = bench_sweep(chosen, _queues(queues), rates=steps, seed=seed, out=out_dir, status=status)
    bench.summary.update(floors)
    _print_bench(bench)


@bench_group.command("scaling")
@click.argument("scenario", default="throughput")
@click.option("--consumers", default="1,2,4,8", show_default=True, help="Consumer processes, in steps.")
@click.option("--tasks", type=click.IntRange(min=1), help="Tasks per run.")
@_bench_options
@one_line_errors
def scaling_command(
    scenario: str, consumers: str, tasks: int | None, queues: str, seed: int, duration: float | None, out_dir: Path
) -> None:
    """Throughput against the number of consumer processes: the scaling curve."""
    check_provider("local")
    chosen = load_scenario(scenario).with_run(tasks=tasks, duration_s=duration)
    counts = [int(c) for c in _numbers(consumers, "--consumers")]
    _print_bench(bench_scaling(chosen, _queues(queues), consumers=counts, seed=seed, out=out_dir, status=status_line()))


@bench_group.command("peers")
@click.option("--queues", default=",".join(DEFAULT_QUEUES), show_default=True,
              help="Comma-separated queues (taskq-worker and raw give the ratios; missing peers are skipped).",
              )  # fmt: skip
@click.option("--tasks", type=click.IntRange(min=100), default=20_000, show_default=True, help="Tasks per drain.")
@click.option("--concurrency", type=click.IntRange(min=1), default=32, show_default=True,
              help="Tasks each worker process runs at once, the same for every library.")  # fmt: skip
@click.option("--workers", default="1,2", show_default=True, help="Worker processes, in steps.")
@click.option("--bodies", default="empty,incr", show_default=True, help="Task bodies: empty, incr (INCR a counter).")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True, help="Interleaved repeats.")
@click.option("--journal-cost", is_flag=True, help="Also drain with journaling on: what hosted journaling costs.")
@click.option("--latency-rates", default="500,2000,8000", show_default=True,
              help="Offered tasks/s for the latency runs ('' to skip them).")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports/bench"), show_default=True)
@one_line_errors
def peers_command(
    queues: str, tasks: int, concurrency: int, workers: str, bodies: str, repeat: int, journal_cost: bool,
    latency_rates: str, out_dir: Path,
) -> None:  # fmt: skip
    """Every queue library side by side, on one Redis: enqueue rate, drain throughput, CPU, latency."""
    from harness.bench.peers import PeersBenchSettings, run_bench  # noqa: PLC0415
    from harness.report.peers import markdown_table, write_peers_report  # noqa: PLC0415

    check_provider("local")
    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown_bodies = set(bodies.split(",")) - {"empty", "incr"}
    if not chosen or unknown_bodies:
        raise click.BadParameter(f"name at least one queue, and bodies among empty, incr (got {bodies!r})")
    rates = tuple(_numbers(latency_rates, "--latency-rates")) if latency_rates else ()
    settings = PeersBenchSettings(
        queues=tuple(chosen), tasks=tasks, concurrency=concurrency,
        workers=tuple(int(w) for w in _numbers(workers, "--workers")), bodies=tuple(bodies.split(",")), repeat=repeat,
        journal_cost=journal_cost, latency_rates=rates,
    )  # fmt: skip
    bench = run_bench(settings, out_dir, status_line())
    plots = write_peers_report(bench, _command_line())
    click.echo(markdown_table(bench))
    out.print(f"report: {bench.folder / 'report.md'} (bench.json, {', '.join(plots)})", markup=False)


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Default: reports/compare/<time>.")
@one_line_errors
def compare_command(runs: tuple[Path, ...], out_dir: Path | None) -> None:
    """Several run folders side by side: one table (ratios to the first run) and overlaid plots."""
    from harness.report.compare import compare_runs  # noqa: PLC0415 - matplotlib loads only here

    target = out_dir or Path("reports/compare") / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    comparison = compare_runs(list(runs), target)
    table = Table(title="comparison")
    table.add_column("figure")
    for run in comparison.runs:
        table.add_column(run.label, overflow="fold")
    for row in comparison.rows:
        table.add_row(*row)
    out.print(table)
    out.print(f"written: {target / 'compare.md'}, compare.html, {', '.join(comparison.plots)}", markup=False)


@click.command("gate")
@click.argument("suite", default="ci")
@click.option("--queue", default="taskq", show_default=True, help="The queue under test.")
@click.option(
    "--baseline", type=click.Path(dir_okay=False, path_type=Path), help="Stored baseline (default: the suite's)."
)
@click.option(
    "--update-baseline", is_flag=True, help="Store this run's figures as the baseline (on a known-good commit)."
)
@click.option(
    "--repeat", type=click.IntRange(min=1), help="Runs per queue of each measured case (default: the suite's)."
)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write the JUnit XML here.")
@click.option("--summary", type=click.Path(dir_okay=False, path_type=Path),
              help="Also append the markdown summary here (e.g. $GITHUB_STEP_SUMMARY).")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports/gate"), show_default=True)
@one_line_errors
def gate_command(
    suite: str, queue: str, baseline: Path | None, update_baseline: bool, repeat: int | None, junit: Path | None,
    summary: Path | None, out_dir: Path,
) -> None:  # fmt: skip
    """Run the SUITE (scenarios/suites/SUITE.toml): exit 1 on any verdict that is not valid, or on a
    performance regression beyond its tolerance against the baseline; 0 when it passes."""
    from harness.gate import load_suite, run_gate  # noqa: PLC0415
    from harness.gate.outputs import summary_markdown, write_outputs  # noqa: PLC0415

    adapter_factory(queue)
    check_provider("local")
    chosen = load_suite(suite, REPO_ROOT)
    result = run_gate(chosen, queue=queue, out=out_dir, status=status_line(), update_baseline=update_baseline,
                      baseline=baseline, repeat=repeat)  # fmt: skip
    write_outputs(result, junit=junit, summary=summary)
    click.echo(summary_markdown(result))  # markdown, not wrapped to the terminal: it is copied whole
    out.print(f"gate folder: {result.folder} (verdict.json, junit.xml, summary.md, report.html)", markup=False)
    sys.exit(0 if result.passed or (update_baseline and all(c.validity for c in result.cases)) else 1)


COMMANDS = (bench_group, compare_command, gate_command)
