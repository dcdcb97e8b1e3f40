"""The ``framestream`` command line.

    framestream demo [--out DIR] [--quick]     the main job, as Prefect flows on local defaults
    framestream tour [--out DIR]               the frames walkthrough (no Prefect, no training)
    framestream run CONFIG.yaml                any flow, from a config file
    framestream score --model M --input SF --output PATH [--scheduler tcp://HOST:PORT]
    framestream models list | download URL [--sha256 HEX] | remove NAME
    framestream serve [--file deploy/prefect.yaml] [--dry-run]

Bad input (a config key, a model that is not installed, a scheduler that does not answer)
is reported as one line on stderr with exit status 2, never a traceback. The flows are
imported inside the commands: Prefect takes a second to import, and ``--help`` should not.
(A little over 500 lines: the commands share their error reporting and flow runner, and the
work itself lives in ``framestream.flows`` and ``framestream.nn.pretrained_model``.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from framestream.errors import ClusterError, ConfigError, FramestreamError

EXIT_BAD_INPUT = 2
EXIT_NOT_READY = 1
SCHEDULER_ENV = "FRAMESTREAM_SCHEDULER"
PREFECT_FILE = Path(__file__).resolve().parent.parent / "deploy" / "prefect.yaml"
SERVER_HINT = """\
framestream serve: schedules need a long-running Prefect server, and PREFECT_API_URL is not set.
The ephemeral server that `framestream demo` and `framestream run` start has no scheduler.
Start one, in another terminal:

    prefect server start                      # UI and API on http://127.0.0.1:4200

then point this shell at it and serve again:

    export PREFECT_API_URL=http://127.0.0.1:4200/api
    framestream serve

(`framestream serve --dry-run` lists the deployments and their next runs without a server.)"""


class CommandError(FramestreamError):
    """A command that cannot go on as asked (names what is missing and how to get it)."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = " ".join(filter(None, [args.command, getattr(args, "models_command", None)]))
    try:
        return args.handler(args) or 0
    except FramestreamError as exc:
        print(f"framestream {command}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"framestream {command}: interrupted", file=sys.stderr)
        return 130


def one_line(exc: BaseException) -> str:
    """The exception's message with its line breaks folded, so an error is one line."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from framestream.frames._config import home

    parser = argparse.ArgumentParser(
        prog="framestream",
        description="Out-of-core frames feeding neural networks, orchestrated by Prefect.",
        epilog="`framestream COMMAND --help` describes each command.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _command(sub, "demo", _demo, "the main job: Fashion-MNIST -> CNN -> scoring -> report",
                    "Fashion-MNIST into SFrames, an augmented training stream, the user guide's "
                    "CNN trained for 2 epochs with checkpoints, evaluation, batch feature "
                    "extraction and scoring of the test set on a local Dask cluster, and a report "
                    "(report.md, report.json, training_curves.png): Prefect flows on the "
                    "embedded defaults (no server to start).")
    demo.add_argument("--out", type=Path, default=home() / "demo",
                      help="where the outputs go (default: $FRAMESTREAM_HOME/demo)")
    demo.add_argument("--quick", action="store_true",
                      help="a smaller, faster run (fewer images, one epoch) for a smoke test")

    tour = _command(sub, "tour", _tour, "the frames walkthrough on real tables and images",
                    "Ingest, transform, summarise, filter, group, sort, join, save and reopen "
                    "a real table, then augment Fashion-MNIST images lazily. No training.")
    tour.add_argument("--out", type=Path, default=home() / "tour",
                      help="where its files go (default: $FRAMESTREAM_HOME/tour)")

    run = _command(sub, "run", _run, "run any flow from a YAML config file",
                   "Run the flow a config file names (its `flow:` key) with that config. "
                   "Examples are in deploy/configs/.")
    run.add_argument("config", type=Path, metavar="CONFIG.yaml", help="the flow's config file")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="a Dask scheduler (tcp://HOST:PORT) instead of the config's cluster "
                          f"(default: ${SCHEDULER_ENV} when the config names none)")

    _add_score(sub)
    _add_models(sub)
    _add_serve(sub)
    return parser


def _command(sub: Any, name: str, handler: Callable[[argparse.Namespace], int | None],
             summary: str, description: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=summary, description=description)
    parser.set_defaults(handler=handler)
    return parser


def _add_score(sub: Any) -> None:
    score = _command(sub, "score", _score, "batch scoring or feature extraction of an SFrame",
                     "Score every row of a saved SFrame with a model, chunk by chunk on a "
                     "Dask cluster (a local one unless --scheduler or $FRAMESTREAM_SCHEDULER "
                     "names one), and save the predictions (or features) as an SFrame.")
    score.add_argument("--model", required=True, metavar="NAME|PREFIX",
                       help="an installed pretrained model (see `framestream models list`) or "
                            "a checkpoint prefix such as ~/.framestream/demo/model/guide_cnn")
    score.add_argument("--epoch", type=int, default=None,
                       help="checkpoint epoch to load (default: the latest)")
    score.add_argument("--input", required=True, type=Path, metavar="SFRAME",
                       help="a saved SFrame with the model's input column(s)")
    score.add_argument("--output", required=True, type=Path, metavar="PATH",
                       help="where the scored SFrame is saved")
    score.add_argument("--features", action="store_true",
                       help="extract features (the input of the classifier) instead of scores")
    score.add_argument("--layer", default=None,
                       help="with --features: the layer whose output is kept")
    score.add_argument("--batch-size", type=int, default=None, help="rows per batch")
    score.add_argument("--scheduler", metavar="ADDRESS", default=os.environ.get(SCHEDULER_ENV),
                       help=f"Dask scheduler, tcp://HOST:PORT (default: ${SCHEDULER_ENV}, "
                            "else a local cluster)")


def _add_models(sub: Any) -> None:
    models = sub.add_parser("models", help="list, download or remove pretrained models",
                            description="The local pretrained-model store "
                                        "($FRAMESTREAM_HOME/models unless set otherwise).")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    _command(msub, "list", _models_list, "the installed models",
             "List the installed models: name, type and version.")
    download = _command(msub, "download", _models_download, "download and install a model",
                        "Download a model archive (http(s) URL, file:// URL or path, e.g. "
                        "GraphLab Create's imagenet1k_inception_bn-1.0.tar.gz), check it and "
                        "install it under its name (the file name before the first '-').")
    download.add_argument("url", metavar="URL", help="the model archive")
    download.add_argument("--sha256", metavar="HEX", help="expected SHA-256 of the archive")
    download.add_argument("--overwrite", action="store_true",
                          help="replace an installed model of the same name")
    remove = _command(msub, "remove", _models_remove, "remove an installed model",
                      "Remove an installed model from the store.")
    remove.add_argument("name", metavar="NAME", help="the model's name")


def _add_serve(sub: Any) -> None:
    serve = _command(sub, "serve", _serve, "register the scheduled deployments and run them",
                     "Register the deployments of deploy/prefect.yaml (a nightly ETL-plus-"
                     "training run, an hourly scoring run) with their cron schedules against "
                     "the Prefect server at $PREFECT_API_URL, then run their flow runs in this "
                     "process until Ctrl-C. Schedules need `prefect server start`; the "
                     "ephemeral server has no scheduler. To use the work pool instead, see "
                     "deploy/README.md (`prefect deploy --all`).")
    serve.add_argument("--file", type=Path, default=PREFECT_FILE, metavar="PREFECT_YAML",
                       help="the deployment file (default: deploy/prefect.yaml)")
    serve.add_argument("--dry-run", action="store_true",
                       help="load each flow, check its parameters, show the next runs; "
                            "needs no server")


# --------------------------------------------------------------------------- flows


def _run_flow(flow: Callable[[Any], Any], config: Any) -> Any:
    # importing framestream.flows has set Prefect's defaults (runtime.prefect_defaults)
    from framestream.flows.runtime import quiet_flow_settings

    # Prefect's background workers report their exit-time drain ("Still processing items")
    # as warnings after the command's own output; that is bookkeeping, not news.
    for name in ("EventsWorker", "APILogWorker"):
        logging.getLogger(name).setLevel(logging.ERROR)
    console = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    for handler in console:
        handler.addFilter(_not_reported_below)
    try:
        with quiet_flow_settings(), run_progress(getattr(flow, "name", "flow")):
            return flow(config)
    finally:
        for handler in console:
            handler.removeFilter(_not_reported_below)


def _not_reported_below(record: logging.LogRecord) -> bool:
    """A console filter: Prefect's log of a FramestreamError (with its traceback) and of the
    failed state is left out, since ``main`` reports the error as one line."""
    if record.exc_info and isinstance(record.exc_info[1], FramestreamError):
        return False
    return not (record.levelno >= logging.ERROR
                and record.getMessage().startswith("Finished in state Failed"))


@contextlib.contextmanager
def run_progress(desc: str) -> Iterator[None]:
    """A progress bar of the flow and task runs Prefect reports finished, on a terminal only;
    Prefect's INFO lines stay hidden, its warnings still show."""
    from tqdm.auto import tqdm

    bar = tqdm(desc=desc, disable=None, leave=False, file=sys.stderr,
               bar_format="{desc}: {n_fmt} steps finished [{elapsed}{postfix}]")
    if bar.disable:
        yield
        return

    def count(record: logging.LogRecord) -> bool:  # a logger filter: counts, then drops INFO
        if record.getMessage().startswith("Finished in state"):
            name = getattr(record, "task_name", None) or getattr(record, "flow_name", None)
            bar.set_postfix_str(f"done: {name}", refresh=False)
            bar.update(1)
        return record.levelno >= logging.WARNING

    loggers = [logging.getLogger(name) for name in ("prefect.task_runs", "prefect.flow_runs")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.INFO)
        lg.addFilter(count)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.removeFilter(count)
            lg.setLevel(level)
        bar.close()


def _demo(args: argparse.Namespace) -> int:
    from framestream.flows.config import demo_config
    from framestream.flows.etl import etl_train

    out = args.out.expanduser().resolve()
    config = quick(demo_config(out)) if args.quick else demo_config(out)
    print(f"framestream demo: Fashion-MNIST -> CNN -> scoring -> report, outputs in {out}")
    _print_result("etl_train", _run_flow(etl_train, config))
    print(f"\noutputs in {out}")
    return 0


def quick(config: Any, train_rows: int = 6000, test_rows: int = 1000) -> Any:
    """The demo's config cut down for a smoke test: fewer images, one epoch."""
    import dataclasses

    def limited(source: Any, rows: int) -> Any:
        return None if source is None else dataclasses.replace(source, limit=rows)

    return dataclasses.replace(
        config, train=limited(config.train, train_rows), test=limited(config.test, test_rows),
        training=dataclasses.replace(config.training, num_epoch=1))


def _tour(args: argparse.Namespace) -> int:
    from framestream.demo import run

    run(args.out.expanduser())
    return 0


def _run(args: argparse.Namespace) -> int:
    path = args.config.expanduser()
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    from framestream.flows import FLOWS
    from framestream.flows.config import load_config

    flow_name, config = load_config(path)
    cluster = getattr(config, "cluster", None)
    address = args.scheduler or (cluster and not cluster.address
                                 and os.environ.get(SCHEDULER_ENV))
    if address:
        config = with_scheduler(config, check_scheduler(address))
    result = _run_flow(FLOWS[flow_name], config)
    _print_result(flow_name, result)
    return 0


def _score(args: argparse.Namespace) -> int:
    model = check_model(args.model, args.epoch)
    if "://" not in str(args.input) and not args.input.exists():
        raise ConfigError(f"--input: {args.input} does not exist (expected a saved SFrame)")
    address = check_scheduler(args.scheduler) if args.scheduler else None
    from framestream.flows.config import load_config
    from framestream.flows.score import extract_features, score

    flow_name, config = load_config(score_config(args, model, address))
    result = _run_flow(extract_features if args.features else score, config)
    _print_result(flow_name, result)
    return 0


def score_config(args: argparse.Namespace, model: str, address: str | None) -> dict[str, Any]:
    """The config mapping (``flows.config.ScoreConfig``) of a ``framestream score`` run."""
    config = {"flow": "extract_features" if args.features else "score", "model": model,
              "data": str(args.input), "output": str(args.output), "layer": args.layer,
              "batch_size": args.batch_size, "cluster": {"address": address} if address else None}
    return {key: value for key, value in config.items() if value is not None}


def with_scheduler(config: Any, address: str) -> Any:
    """A copy of ``config`` whose cluster is the Dask scheduler at ``address``."""
    import dataclasses

    if getattr(config, "cluster", None) is None:
        raise ConfigError(f"--scheduler: a {type(config).__name__} runs nothing on Dask")
    return dataclasses.replace(config, cluster=dataclasses.replace(config.cluster, address=address))


def check_scheduler(address: str, timeout: float = 5.0) -> str:
    """``address`` as tcp://HOST:PORT, after checking that something listens there."""
    target = address if "://" in address else f"tcp://{address}"
    scheme, _, hostport = target.partition("://")
    host, _, port = hostport.rpartition(":")
    if scheme != "tcp" or not host or not port.isdigit():
        raise ClusterError(f"Dask scheduler address {address!r} is not tcp://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {target} ({exc.strerror or exc}); start one "
            f"with deploy/start-cluster.sh or leave --scheduler out for a local cluster") from None
    return target


def check_model(model: str, epoch: int | None = None) -> str:
    """The ``model`` of a ScoreConfig: a checkpoint (``prefix``, or ``prefix-0004`` for one
    epoch) or the name of an installed pretrained model; else ``ModelNotFoundError``."""
    from framestream.flows._models import checkpoint_of
    from framestream.nn import pretrained_model

    prefix = str(Path(model).expanduser())
    candidate = prefix if epoch is None else f"{prefix}-{epoch:04d}"
    if checkpoint_of(candidate) is not None:
        return candidate
    names = [entry.name for entry in pretrained_model.list_models()]
    if model in names and epoch is None:
        return model
    installed = ", ".join(names) if names else "none"
    raise pretrained_model.ModelNotFoundError(
        f"model {candidate!r} is neither a checkpoint ({candidate}-symbol.json or "
        f"<prefix>-NNNN.params missing) nor an installed model (installed: {installed}); "
        "install one with `framestream models download URL`")


def _print_result(flow_name: str, result: Any) -> None:
    """A flow's result: etl_train's report.md, another dict as JSON, else the saved path."""
    outputs = result.get("outputs", {}) if isinstance(result, dict) else {}
    if outputs.get("report_md") and Path(outputs["report_md"]).is_file():
        print("\n" + Path(outputs["report_md"]).read_text().rstrip())
    elif isinstance(result, dict):
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"{flow_name}: {result}")


# --------------------------------------------------------------------------- models


def _models_list(args: argparse.Namespace) -> int:
    from framestream.nn import pretrained_model

    entries = pretrained_model.list_models()
    if not entries:
        print(f"no models installed in {pretrained_model.default_location()}; install one with "
              "`framestream models download URL`")
        return 0
    header = ("NAME", "TYPE", "VERSION")
    rows = [header, *((e.name, str(e.type), str(e.version)) for e in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def _models_download(args: argparse.Namespace) -> int:
    from framestream.nn import pretrained_model

    entry = pretrained_model.download_model(args.url, overwrite=args.overwrite,
                                            sha256=args.sha256)
    print(f"installed {entry.name} ({entry.type}, version {entry.version}) in "
          f"{pretrained_model.default_location() / entry.name}")
    return 0


def _models_remove(args: argparse.Namespace) -> int:
    from framestream.nn import pretrained_model

    pretrained_model.remove_model(args.name)
    print(f"removed {args.name} from {pretrained_model.default_location()}")
    return 0


# --------------------------------------------------------------------------- serve


def _serve(args: argparse.Namespace) -> int:
    entries = read_deployments(args.file)
    api_url = None if args.dry_run else _prefect_api_url()
    if not args.dry_run and not api_url:
        print(SERVER_HINT, file=sys.stderr)
        return EXIT_NOT_READY
    if api_url:
        _check_server(api_url)
    deployments = [_to_deployment(entry, args.file) for entry in entries]
    if args.dry_run:
        _print_deployments(entries)
        return 0
    import prefect
    from prefect.deployments.runner import DeploymentApplyError

    names = ", ".join(f"{e['name']} ({e['schedules'][0]['cron']})" for e in entries)
    print(f"serving {len(deployments)} deployment(s) against {api_url}: {names}; Ctrl-C stops")
    try:
        prefect.serve(*deployments, print_starting_message=False)
    except DeploymentApplyError as exc:
        raise CommandError(f"the server refused a deployment: {one_line(exc)[:500]}") from None
    return 0


def read_deployments(path: Path) -> list[dict[str, Any]]:
    """The deployments of a prefect.yaml, checked: name, entrypoint and cron schedules."""
    import yaml

    if not path.is_file():
        raise ConfigError(f"deployment file {path} does not exist (pass --file PREFECT_YAML)")
    try:
        entries = (yaml.safe_load(path.read_text()) or {}).get("deployments") or []
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {one_line(exc)}") from None
    if not entries:
        raise ConfigError(f"{path}: no `deployments` listed")
    for i, entry in enumerate(entries):
        for key in ("name", "entrypoint", "schedules"):
            if not entry.get(key):
                raise ConfigError(f"{path}: deployments[{i}] has no `{key}`")
        if any("cron" not in s for s in entry["schedules"]):
            raise ConfigError(f"{path}: deployments[{i}] ({entry['name']}): `framestream serve` "
                              "takes cron schedules only")
    return entries


def _print_deployments(entries: list[dict[str, Any]]) -> None:
    import asyncio

    from prefect.server.schemas.schedules import CronSchedule

    for entry in entries:
        print(f"{entry['name']}: {entry['entrypoint']} {entry.get('parameters') or {}}")
        for s in entry["schedules"]:
            cron = CronSchedule(cron=s["cron"], timezone=s.get("timezone") or "UTC")
            runs = asyncio.run(cron.get_dates(n=3))
            when = ", ".join(r.strftime("%Y-%m-%d %H:%M %Z") for r in runs)
            print(f"  cron {s['cron']!r} ({cron.timezone}); next: {when}")


def _prefect_api_url() -> str | None:
    """The server URL from the environment or the active Prefect profile."""
    from prefect.settings import get_current_settings

    return os.environ.get("PREFECT_API_URL") or get_current_settings().api.url or None


def _check_server(api_url: str) -> None:
    import httpx

    try:
        httpx.get(api_url.rstrip("/") + "/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise CommandError(f"no Prefect server answers at PREFECT_API_URL={api_url} "
                           f"({one_line(exc)}); start one with `prefect server start`") from None


def _to_deployment(entry: dict[str, Any], prefect_file: Path) -> Any:
    """The entry as a RunnerDeployment, its flow loaded and its parameters checked."""
    from prefect.exceptions import ParameterTypeError, ScriptError
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    where = f"{prefect_file}: deployment {entry['name']!r}"
    os.chdir(prefect_file.resolve().parent.parent)  # entrypoints and configs are relative to it
    try:
        flow = load_flow_from_entrypoint(entry["entrypoint"])
    except (ScriptError, OSError, AttributeError, ImportError) as exc:
        cause = exc.user_exc if isinstance(exc, ScriptError) else exc
        raise ConfigError(f"{where}: cannot load {entry['entrypoint']}: "
                          f"{one_line(cause)}") from None
    parameters = entry.get("parameters") or {}
    flows_logger = logging.getLogger("prefect.flows")  # it logs the failure too; we report it
    level = flows_logger.level
    flows_logger.setLevel(logging.CRITICAL)
    try:
        flow.validate_parameters(parameters)
    except ParameterTypeError as exc:
        raise ConfigError(f"{where}: parameters {parameters} do not fit {entry['entrypoint']} "
                          f"({one_line(exc)})") from None
    finally:
        flows_logger.setLevel(level)
    schedules = [Cron(s["cron"], timezone=s.get("timezone") or "UTC",
                      active=s.get("active", True)) for s in entry["schedules"]]
    return flow.to_deployment(
        name=entry["name"], schedules=schedules, parameters=parameters,
        description=entry.get("description"), tags=entry.get("tags"),
        concurrency_limit=entry.get("concurrency_limit"))
