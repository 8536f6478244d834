"""The ``trautoml`` command.

::

    trautoml demo                       # stream:demo end to end (preset small), then a table and how to open the UI
    trautoml ingest URI [URI ...]       # datasets or streams (stream:NAME, manifest:PATH, folder-stream:DIR)
    trautoml watch DIR                  # ingest every dataset that lands in DIR, in arrival order, until Ctrl-C
    trautoml groups [--json]            # the groups: id, members (arrival order), model spec
    trautoml show NAME [--json]         # one dataset's decision, why, accuracies and times
    trautoml summary [--json]           # what grouping saved: searches run, models reused, time, accuracies
    trautoml ui [--port 5000]           # the MLflow UI on the workspace's store, on 127.0.0.1

Options: ``trautoml COMMAND --help`` lists a command's own. ``--workspace`` (all but ``bench``); ``--tracking-uri``
(``ingest``, ``demo``, ``watch``, ``ui``); ``--backend``, ``--grouper``, ``--preset``, ``--executor``, ``--seed``,
``--quiet``, ``--set KEY=VALUE`` (a preset field, repeatable; see ``trautoml.presets``) and the search options
(``ingest``, ``demo``, ``watch``). Shared options may come before the command too; one the command does not take is
refused (exit 2). Defaults: ``COMMON_DEFAULTS``.

Exit status: 0 done; 2 bad input — a dataset or option the data layer or trautoml refuses, an unknown backend,
grouper, preset or setting, a workspace set up with other settings — with a one-line message on stderr and nothing
changed in the workspace or the MLflow store (every dataset named on the command line is loaded and checked before
the first is ingested); 1 an unexpected failure (one line; ``TRAUTOML_DEBUG=1`` shows the traceback);
130 interrupted during an ingest (``watch`` exits 0 on Ctrl-C or SIGTERM: that is how it is meant to stop).

``watch DIR``: polls DIR every ``--poll`` seconds (default 2). Candidates are ``*.npz`` files and image-folder
datasets (a folder holding class sub-folders) directly in DIR; names starting with ``.`` or ending in ``.tmp``,
``.part`` or ``.ready`` are ignored. A candidate is *ready* when its size and modification time (for a folder:
file count, total size and newest time of everything inside) are the same at two consecutive polls, or at once
when a marker ``NAME.ready`` (e.g. ``x.npz.ready``) exists beside it — writers that can, should write the marker
last (or write ``x.npz.part`` and rename it). Ready candidates are ingested one at a time in arrival order
(modification time, then name); files that land while an ingest runs are picked up by the next polls. Each is
ingested once per content: a file that changes afterwards is a new dataset and is ingested again; identical content
returns the earlier decision at once. A candidate the data layer refuses is reported on stderr and skipped until
it changes. ``--max-items N`` stops after N candidates (for tests and scripts).
"""
from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class BadInput(Exception):
    """Raised for input the command refuses (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's default prints the usage too)
        raise BadInput(f"{self.prog}: {message} (see {self.prog} --help)")


#: Every shared option's default, stated here only: the help texts and `main` read them from here.
COMMON_DEFAULTS: dict[str, Any] = {
                   "workspace": ".", "backend": "hyperband", "grouper": "mh", "preset": "small", "tracking_uri": None,
                   "executor": "local", "seed": 0, "quiet": False, "set": [], "backend_option": [],
                   "agent": None, "mechanism": "scratch", "backbone": None, "weights": None, "cut": None,
                   "finetune": False, "warm_start": None, "warm_k": 3}

#: The shared options, by section: (flags, keyword arguments of add_argument). A help text gets
#: " (default: …)" from COMMON_DEFAULTS where the default is a value.
_SECTIONS: dict[str, tuple[str, list[tuple[tuple[str, ...], dict[str, Any]]]]] = {
    "workspace": ("workspace", [
        (("--workspace", "-w"), {"help": "workspace folder"}),
    ]),
    "store": ("MLflow", [
        (("--tracking-uri",), {"help": "MLflow tracking URI (default: the workspace's mlflow.db, or "
                                       "$MLFLOW_TRACKING_URI)"}),
    ]),
    "ingest": ("ingest options", [
        (("--backend",), {"help": "search backend: random, hyperband, metaqnn, enas, transfer or a plug-in"}),
        (("--grouper",), {"help": "grouper: mh, random, kmeans, seq-kmeans, metafeatures, or none (search every "
                                  "dataset)"}),
        (("--preset",), {"help": "tiny, small or paper"}),
        (("--executor",), {"help": "local, serial or ray"}),
        (("--seed",), {"type": int, "help": "seed of profiles, searches and trainings"}),
        (("--quiet", "-q"), {"action": "store_true", "help": "no progress on stderr"}),
        (("--set",), {"action": "append", "metavar": "KEY=VALUE",
                      "help": "override a preset field, e.g. --set search_trials=6 (repeatable)"}),
    ]),
    "search": ("search options", [
        (("--backend-option",), {"action": "append", "metavar": "KEY=VALUE",
                                 "help": "a keyword for the backend's constructor, JSON values, e.g. space=mlp "
                                         "(repeatable)"}),
        (("--warm-start",), {"help": "each search first trains the models of earlier datasets: latest, or the "
                                     "nearest by profile or by metafeatures (default: none)"}),
        (("--warm-k",), {"type": int, "help": "how many earlier models --warm-start trains"}),
        (("--agent",), {"help": "transfer backend: lstm or transformer (default: transformer)"}),
        (("--mechanism",), {"help": "scratch, cells (ENAS cells) or predefined"}),
        (("--backbone",), {"metavar": "KIND:REF|JSON",
                           "help": "predefined: torchvision:NAME, mlflow:MODEL_URI or the backbone as JSON"}),
        (("--weights",), {"metavar": "PATH", "help": "predefined: local weights of a torchvision backbone"}),
        (("--cut",), {"metavar": "LAYER", "help": "predefined: reuse the backbone up to this layer"}),
        (("--finetune",), {"action": "store_true", "help": "predefined: train the reused layers too (default: "
                                                           "frozen)"}),
    ]),
}
_INGESTING = ("workspace", "store", "ingest", "search")
#: The shared sections each command takes: its --help lists those and its own options, nothing else.
COMMAND_SECTIONS = {"demo": _INGESTING, "ingest": _INGESTING, "watch": _INGESTING, "groups": ("workspace",),
                    "show": ("workspace",), "summary": ("workspace",), "ui": ("workspace", "store"), "bench": ()}


def _dest(flags: tuple) -> str:
    return flags[0].lstrip("-").replace("-", "_")


def _with_default(dest: str, help_text: str) -> str:
    value = COMMON_DEFAULTS.get(dest)
    if value is None or value is False or value == [] or "(default" in help_text:
        return help_text
    return f"{help_text} (default: {value})"


def _add_sections(p: argparse.ArgumentParser, sections, hidden: bool = False) -> None:
    """The shared options of ``sections`` (defaults suppressed, so an option given both before and after the
    command keeps the later; `main` fills the rest in from COMMON_DEFAULTS). ``hidden``: accepted, not listed."""
    for section in sections:
        title, options = _SECTIONS[section]
        g = p.add_argument_group(title)
        for flags, kwargs in options:
            help_text = argparse.SUPPRESS if hidden else _with_default(_dest(flags), kwargs["help"])
            g.add_argument(*flags, **{**kwargs, "default": argparse.SUPPRESS, "help": help_text})


def section_dests(command: str) -> set[str]:
    """The shared options (argparse dests) that ``command`` takes."""
    return {_dest(flags) for s in COMMAND_SECTIONS[command] for flags, _ in _SECTIONS[s][1]}


def build_parser() -> argparse.ArgumentParser:
    """The ``trautoml`` argument parser: one sub-command per entry of ``COMMANDS``, each with its own and its shared
    option sections (the shared ones are accepted before the command too)."""
    parser = _Parser(prog="trautoml", description="Transferable AutoML over a stream of image datasets.",
                     epilog="Each command's options: trautoml COMMAND --help.")
    # accepted before the command too (trautoml --workspace ws groups), listed under each command that takes them
    _add_sections(parser, _SECTIONS, hidden=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text[:1].upper() + help_text[1:] + ".")
        _add_sections(p, COMMAND_SECTIONS[name])
        return p

    command("demo", "ingest stream:demo (preset small) and print the result")
    p = command("ingest", "ingest datasets or streams")
    p.add_argument("uris", nargs="+", metavar="URI")
    p = command("watch", "ingest every dataset that lands in DIR, until interrupted")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--poll", type=float, default=2.0, metavar="SECONDS",
                   help="seconds between polls (default: %(default)s)")
    p.add_argument("--max-items", type=int, default=None, metavar="N", help="stop after N datasets")
    p.add_argument("--summary-every", type=int, default=10, metavar="N",
                   help="report what grouping saved every N datasets (default: %(default)s), and on stopping; "
                        "0: only on stopping")
    p = command("groups", "list the groups")
    p.add_argument("--json", action="store_true", help="JSON: [{id, members, model}]")
    p = command("show", "one dataset's decision")
    p.add_argument("name", metavar="NAME", help="its short name (trautoml groups lists them), URI or content hash")
    p.add_argument("--json", action="store_true", help="the Decision as JSON")
    p = command("summary", "what grouping saved: searches, reuses, time, accuracies")
    p.add_argument("--json", action="store_true", help="the StreamSummary as JSON")
    p = command("ui", "start the MLflow UI on the workspace's store (127.0.0.1) and print the runs table's URL")
    p.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default: %(default)s)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser (one opens only where a "
                   "graphical browser is available)")
    p = command("bench", "the paper's Table 2 protocol: every method on one stream, a report")
    p.add_argument("--preset", dest="bench_preset", default="ci", help="ci, small or paper (default: %(default)s)")
    p.add_argument("--backends", default="hyperband", help="comma-separated backends (default: %(default)s)")
    p.add_argument("--orders", type=int, default=None, help="random stream orders (default: the preset's)")
    p.add_argument("--budget-scale", default="1", metavar="S[,S...]",
                   help="rerun with every search's budget times each scale, e.g. 1,3,10: a cost-vs-budget report "
                        "(default: %(default)s)")
    p.add_argument("--reference-seeds", type=int, default=None, metavar="K",
                   help="standalone seeds whose mean is the reference (default: the preset's, 3)")
    p.add_argument("--stream", default=None, metavar="URI",
                   help="any stream: stream:NAME, manifest:PATH, folder-stream:DIR (default: the preset's)")
    p.add_argument("--methods", default=None,
                   help="comma-separated rows to run (default: all; standalone always runs, it is the reference)")
    p.add_argument("--out", default="bench-report", help="report folder (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the table as JSON keyed by method")
    p.add_argument("--workspace", "-w", default=COMMON_DEFAULTS["workspace"],
                   help="its cache lives in WORKSPACE/bench-cache (default: %(default)s)")
    p.add_argument("--executor", default=COMMON_DEFAULTS["executor"],
                   help="local, serial or ray (default: %(default)s)")
    p.add_argument("--seed", type=int, default=COMMON_DEFAULTS["seed"],
                   help="seed of the orders, profiles and searches (default: %(default)s)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    return parser


def _overrides(pairs: list[str], option: str = "--set") -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{option} expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _backend_options(args) -> dict:
    out = {}
    for key, value in _overrides(args.backend_option, "--backend-option").items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare word: a string
    if args.agent is not None:
        out["agent"] = args.agent
    return out


def _quiet_mlflow() -> None:
    """MLflow's INFO lines ("Creating initial MLflow database tables...") are noise beside our progress output."""
    import mlflow  # noqa: F401 - imported first so that its logging setup is in place before we quieten it

    logging.getLogger("mlflow").setLevel(logging.WARNING)


def _automl(args, preset_default: str = "small"):
    from trautoml.api import TrAutoML

    _quiet_mlflow()

    from trautoml.mechanisms import parse_backbone

    try:
        backbone = None if args.backbone is None else parse_backbone(args.backbone, args.weights, args.cut)
        return TrAutoML(workspace=args.workspace, backend=args.backend, grouper=args.grouper,
                        preset=args.preset or preset_default, tracking_uri=args.tracking_uri,
                        executor=args.executor, seed=args.seed, quiet=args.quiet,
                        backend_options=_backend_options(args), mechanism=args.mechanism, backbone=backbone,
                        freeze=not args.finetune, warm_start=args.warm_start, warm_k=args.warm_k,
                        **_overrides(args.set))
    except ValueError as exc:  # unknown backend / grouper / preset / setting / executor
        raise BadInput(str(exc)) from None


# ------------------------------------------------------------------------------------------ output
def _fmt_seconds(s: float) -> str:
    return f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}m"


def _table(rows: list[list[Any]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def decisions_table(decisions) -> str:
    """A plain-text table of ``decisions`` (Decision objects), one row each: dataset, group, decision, reason,
    validation and test accuracy, time."""
    rows = [[d.dataset, d.group, d.outcome, d.reason, f"{d.val_accuracy:.3f}", f"{d.test_accuracy:.3f}",
             _fmt_seconds(d.total_seconds)] for d in decisions]
    return _table(rows, ["dataset", "group", "decision", "reason", "val acc", "test acc", "time"])


def _ui_hint(args) -> str:
    ws = "" if args.workspace == "." else f" --workspace {args.workspace}"
    if args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):
        return f"MLflow store: {args.tracking_uri or os.environ['MLFLOW_TRACKING_URI']}"
    return f"Open the MLflow UI: trautoml ui{ws}   (it prints the URL of the runs table)"


def _spec_summary(spec: dict) -> str:
    arch = spec.get("arch", {})
    layers = arch.get("layers")
    if isinstance(layers, list):
        parts = []
        for layer in layers:
            t = layer.get("type")
            parts.append(f"conv{layer.get('filters')}k{layer.get('kernel')}" if t == "conv" else
                         f"{layer.get('op', '')}pool" if t == "pool" else f"fc{layer.get('units')}" if t == "fc"
                         else str(t))
        return f"{spec.get('space')}: " + "-".join(parts)
    return str(spec.get("space"))


# ------------------------------------------------------------------------------------------ commands
def cmd_ingest(args, stream=None) -> int:
    """``trautoml ingest``: ingest ``args.uris`` (or, given, the named ``stream``) into the workspace, then print the
    decisions table, what grouping saved and how to open the UI. Every dataset named is loaded before the first is
    ingested; a dataset or workspace the data layer refuses raises ``BadInput``. Returns the exit status."""
    from trautoml.data import DatasetError
    from trautoml.workspace import WorkspaceError

    t = _automl(args)
    with t:
        try:
            if stream is not None:
                items = t.expand(stream)  # a named stream: loaded one at a time, as they go
            else:  # every dataset on the command line is loaded (validated) before the first is ingested
                items = [t.load(x) for uri in args.uris for x in t.expand(uri)]
            t.check_workspace()
            decisions = [t.ingest(x) for x in _announce(t, items)]
        except (DatasetError, WorkspaceError) as exc:
            raise BadInput(str(exc)) from None
        summary = t.log_summary()
    print(decisions_table(decisions))
    if stream is not None or len(decisions) > 1:
        total = sum(d.total_seconds for d in decisions)
        print(f"\nthis command: {len(decisions)} datasets, {_fmt_seconds(total)} of profiling, search and training")
    print("\nwhat grouping saved (the workspace's whole stream; trautoml summary --json for the numbers):")
    print("  " + summary.text().replace("\n", "\n  "))
    print(_ui_hint(args))
    return EXIT_OK


def _announce(t, items):
    from trautoml.naming import item_name

    for i, item in enumerate(items, 1):
        name = item_name(item)
        t.progress.message(f"[{i}/{len(items)}] {name}")
        yield item


def cmd_demo(args) -> int:
    """``trautoml demo``: `cmd_ingest` over ``stream:demo``, then the wall-clock time on stderr (unless ``--quiet``).
    Returns the exit status."""
    started = time.perf_counter()
    code = cmd_ingest(args, stream="stream:demo")
    if not args.quiet:
        print(f"demo finished in {_fmt_seconds(time.perf_counter() - started)} (wall clock)", file=sys.stderr)
    return code


def _read_workspace(args):
    from trautoml.workspace import Workspace, WorkspaceError

    try:
        return Workspace(Path(args.workspace).expanduser().resolve(), create=False)
    except WorkspaceError:
        return None


def cmd_groups(args) -> int:
    """``trautoml groups``: print the workspace's groups (id, size, model, members in arrival order), or as JSON with
    ``--json``. Returns the exit status."""
    ws = _read_workspace(args)
    groups = [] if ws is None else ws.groups()
    if args.json:
        print(json.dumps(groups, indent=2, sort_keys=False))
    elif not groups:
        print(f"no groups yet in {Path(args.workspace).resolve()}")
    else:
        print(_table([[g["id"], len(g["members"]), _spec_summary(g["model"]), ", ".join(g["members"])]
                      for g in groups], ["group", "size", "model", "members (arrival order)"]))
    return EXIT_OK


def cmd_show(args) -> int:
    """``trautoml show NAME``: print one dataset's decision (group, outcome, backend, model, accuracies, times, FLOPs,
    why), or as JSON with ``--json``; ``BadInput`` when the workspace has no such dataset. Returns the exit status."""
    from trautoml.decision import Decision
    from trautoml.naming import find_dataset
    from trautoml.summary import format_flops

    ws = _read_workspace(args)
    row = None if ws is None else find_dataset(ws, args.name)
    if row is None:
        raise BadInput(f"no dataset {args.name!r} in workspace {Path(args.workspace).resolve()} "
                       "(trautoml groups lists them)")
    d = Decision.from_dict(row["decision"])
    if args.json:
        print(json.dumps(d.to_dict(), indent=2, sort_keys=True))
        return EXIT_OK
    founded = "founded" if d.founded else "joined"
    lines = [
        ("dataset", f"{d.dataset}   (#{row['seq']}, family {row.get('family') or '-'})"),
        ("uri", row.get("uri") or "-"),
        ("content", d.content_hash),
        ("group", f"{d.group} ({founded})"),
        ("decision", f"{d.outcome} ({d.reason})"),
        ("backend", d.backend),
        ("model", f"{_spec_summary(d.spec.to_dict())}   [{d.spec.key()}]"),
        ("spec", d.spec.to_json()),
        ("accuracy", f"validation {d.val_accuracy:.4f}   test {d.test_accuracy:.4f}"),
        ("time", f"profile {_fmt_seconds(d.profile_seconds)}   search {_fmt_seconds(d.search_seconds)}   "
                 f"train {_fmt_seconds(d.train_seconds)}   total {_fmt_seconds(d.total_seconds)}"),
        ("FLOPs", f"profile {format_flops(d.profile_flops)}   search {format_flops(d.search_flops)}   "
                  f"train {format_flops(d.train_flops)}   total {format_flops(d.total_flops)}"),
    ]
    if d.F is not None:
        lines.append(("test", f"Behrens–Fisher F = {d.F:.3f}, p = {d.p_value:.3g}"))
    if d.trials:
        lines.append(("trials", f"{d.trials} ({d.cached_trials} from the cache, "
                                f"{d.failed_trials} failed), "
                                f"{_fmt_seconds(d.trial_seconds)} measured"))
    lines.append(("MLflow run", d.run_id or "-"))
    width = max(len(k) for k, _ in lines)
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in lines))
    print("why\n  " + d.explanation.replace("\n", "\n  "))
    return EXIT_OK


def cmd_summary(args) -> int:
    """``trautoml summary``: print what grouping saved over the workspace's stream (with one row per group), or as JSON
    with ``--json``. Returns the exit status."""
    from trautoml.decision import Decision
    from trautoml.summary import summarize

    ws = _read_workspace(args)
    summary = summarize([] if ws is None else [Decision.from_dict(r["decision"]) for r in ws.datasets()])
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary.text())
        if summary.per_group:
            print()
            print(_table([[g.group, g.datasets, g.searched, g.reused, _fmt_seconds(g.search_seconds),
                           "-" if g.estimated_all_search_seconds is None
                           else _fmt_seconds(g.estimated_all_search_seconds),
                           _fmt_acc(g.searched_test_accuracy), _fmt_acc(g.reused_test_accuracy)]
                          for g in summary.per_group],
                         ["group", "datasets", "searched", "reused", "search", "all-search (est.)",
                          "searched test", "reused test"]))
    return EXIT_OK


def _fmt_acc(a) -> str:
    return "-" if a is None else f"{a:.3f}"


def _watch_signature(p: Path):
    """(count, total size, newest mtime) of a file or of everything inside a folder."""
    if p.is_file():
        st = p.stat()
        return (1, st.st_size, st.st_mtime_ns)
    count = size = newest = 0
    for dirpath, _, files in os.walk(p):
        for f in files:
            try:
                st = os.stat(os.path.join(dirpath, f))
            except FileNotFoundError:
                continue
            count, size, newest = count + 1, size + st.st_size, max(newest, st.st_mtime_ns)
    return (count, size, max(newest, p.stat().st_mtime_ns))


_IGNORED_SUFFIXES = (".tmp", ".part", ".ready")


def _watch_candidates(d: Path) -> list[Path]:
    """The datasets directly in ``d``, by ``folder-stream:``'s rule (``folder_stream_uri``), less partial uploads."""
    from trautoml.data.streams import folder_stream_uri

    return [p for p in d.iterdir() if not p.name.endswith(_IGNORED_SUFFIXES) and folder_stream_uri(p) is not None]


class FolderWatch:
    """What ``watch`` ingests next in a folder: datasets that stopped changing (the same size and mtime over two
    polls) or that have a ``NAME.ready`` marker, oldest first, each content signature once. It remembers only the
    files still in the folder, so a watcher over a folder that is emptied as it goes does not grow."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._previous: dict[Path, tuple] = {}  # signatures seen at the last poll
        self._done: dict[Path, tuple] = {}  # signatures handed out and handled

    def ready(self) -> list[tuple[Path, tuple]]:
        """Poll once: the (path, signature) pairs to ingest now, oldest first."""
        now: dict[Path, tuple] = {}
        ready = []
        for p in _watch_candidates(self.folder):
            try:
                sig = _watch_signature(p)
            except FileNotFoundError:
                continue
            now[p] = sig
            if self._done.get(p) == sig:
                continue
            if self._previous.get(p) == sig or p.with_name(p.name + ".ready").exists():
                ready.append((sig[2], p.name, p, sig))
        self._previous = now
        self._done = {p: sig for p, sig in self._done.items() if p in now}
        return [(p, sig) for _, _, p, sig in sorted(ready)]

    def done(self, path: Path, signature: tuple) -> None:
        """Mark ``path``, with the content ``signature`` that `ready` gave, as handled: it is not handed out again until
        its content changes."""
        self._done[path] = signature

    def __len__(self) -> int:
        """Files remembered (seen at the last poll or handled and still there)."""
        return len(self._previous.keys() | self._done.keys())


def cmd_watch(args) -> int:
    """``trautoml watch DIR``: poll ``args.dir`` every ``--poll`` seconds and ingest each ready dataset (see
    `FolderWatch`), one line per dataset on stdout; a refused dataset is reported on stderr and skipped. Stops on Ctrl-C
    or SIGTERM, or after ``--max-items``. Returns the exit status."""
    from trautoml.data import DatasetError
    from trautoml.data.streams import folder_stream_uri
    from trautoml.workspace import WorkspaceError

    d = Path(args.dir).expanduser()
    if not d.is_dir():
        raise BadInput(f"watch: folder not found: {d}")
    if args.poll <= 0:
        raise BadInput(f"--poll must be positive, got {args.poll}")
    if args.summary_every < 0:
        raise BadInput(f"--summary-every must be 0 or more, got {args.summary_every}")
    t = _automl(args)
    try:
        t.check_workspace()
    except WorkspaceError as exc:
        raise BadInput(str(exc)) from None

    # `kill -USR1 PID` prints every thread's stack, for a watcher that seems stuck.
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    folder = FolderWatch(d)
    handled = 0
    t.progress.message(f"watching {d.resolve()} (every {args.poll:g}s; Ctrl-C stops)")
    from trautoml.tracking import shutdown_model_logger

    try:
        with _stopped_by_signals() as stop, t:
            t.progress.checkpoint = stop.checkpoint
            while True:
                for p, sig in folder.ready():
                    try:
                        uri = folder_stream_uri(p)
                        if uri is None:
                            raise DatasetError(f"{p} is gone or no longer a dataset")
                        decision = t.ingest(uri)
                        print(f"{p.name}\t{decision.dataset}\t{decision.group}\t{decision.outcome}\t"
                              f"{decision.reason}\tval {decision.val_accuracy:.3f}\t"
                              f"{_fmt_seconds(decision.total_seconds)}", flush=True)
                    except (DatasetError, WorkspaceError) as exc:
                        print(f"trautoml: watch: skipping {p.name}: {_one_line(exc)}", file=sys.stderr, flush=True)
                    folder.done(p, sig)
                    handled += 1
                    if args.summary_every and handled % args.summary_every == 0:
                        _watch_summary(t)
                    if args.max_items is not None and handled >= args.max_items:
                        _watch_summary(t)
                        return EXIT_OK
                time.sleep(args.poll)
    except KeyboardInterrupt:
        t.progress.checkpoint = None
        t.progress.message(f"watch: stopped after {handled} dataset(s)")
        if handled:
            _watch_summary(t)
        return EXIT_OK
    finally:
        shutdown_model_logger()  # `with t` closed the trial workers; this is the last child


def _watch_summary(t) -> None:
    """The watcher's periodic report of what grouping saved: on stderr (stdout holds one row per dataset) and in
    MLflow. A failure to report never stops the watcher."""
    try:
        summary = t.log_summary()
    except Exception as exc:  # noqa: BLE001 - the summary is a report; the watcher goes on
        print(f"trautoml: watch: summary failed: {_one_line(exc)}", file=sys.stderr, flush=True)
        return
    if summary.datasets:
        print("watch: what grouping saved so far\n  " + summary.text().replace("\n", "\n  "), file=sys.stderr,
              flush=True)


def cmd_ui(args) -> int:
    """``trautoml ui``: serve the MLflow UI over the workspace's store (or ``--tracking-uri``) on 127.0.0.1:``--port``,
    open the runs table in a browser unless ``--no-browser``, and wait until it stops. Only prints the address when the
    store is a server already. Returns the exit status."""
    from trautoml.tracking import workspace_tracking_uri

    root = Path(args.workspace).expanduser().resolve()
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri and uri.startswith(("http://", "https://")):
        print(f"the MLflow store is a server already: open {_runs_url(uri, uri) or uri}")
        return EXIT_OK
    if not uri:
        if not (root / "mlflow.db").exists():
            raise BadInput(f"no MLflow store in {root} (mlflow.db): ingest a dataset first, or pass --workspace")
        uri = workspace_tracking_uri(root)
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin)] if mlflow_bin.exists() else [sys.executable, "-m", "mlflow"]
    cmd += ["server", "--backend-store-uri", uri, "--default-artifact-root", (root / "mlruns").as_uri(),
            "--host", "127.0.0.1", "--port", str(args.port)]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store {uri}); Ctrl-C stops it", file=sys.stderr, flush=True)
    url = _runs_url(uri, f"http://127.0.0.1:{args.port}")
    if url:
        print(f"runs table: {url}", flush=True)
    # The server and its workers get a process group of their own, taken down as a whole however we stop.
    # preexec_fn is the only way to set PR_SET_PDEATHSIG, and no thread of ours runs yet (the browser's starts later).
    proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=_terminate_when_parent_dies)  # noqa: PLW1509
    if url and not args.no_browser:
        _open_browser_when_up(url, args.port)
    try:
        with _stopped_by_signals():
            code = proc.wait()
    except KeyboardInterrupt:
        code = EXIT_OK
    finally:
        _stop_group(proc)
    return code


def _stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM to the child's process group, SIGKILL to what is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            time.sleep(0.5)  # the group's other members (the server's workers) end just after their master
        except subprocess.TimeoutExpired:
            pass


def _terminate_when_parent_dies() -> None:
    """In the child, before exec: SIGTERM it when its parent dies, even by SIGKILL (Linux; elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _StopRequest:
    """A stop signal's state. Python prints and drops an exception raised while a finaliser runs ("Exception
    ignored in ..."), so a KeyboardInterrupt from the handler can be lost mid-ingest (seen: inside SQLAlchemy's
    cleanup); `checkpoint`, called at every progress line, raises it again there, before anything is committed.
    The watcher unhooks it once the stop is being handled, so the cleanup's own lines print."""

    def __init__(self) -> None:
        self.pending = False

    def checkpoint(self) -> None:
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def _stopped_by_signals():
    """While the block runs, SIGTERM, SIGHUP and SIGINT raise KeyboardInterrupt (a process manager, ``timeout``, a
    closing terminal, Ctrl-C), so cleanup runs; also where SIGINT was inherited as ignored. Yields the
    `_StopRequest`."""
    request = _StopRequest()

    def stop(signum, frame):
        request.pending = True
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        yield request
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _runs_url(tracking_uri: str, base_url: str) -> str | None:
    """The runs table's URL (`trautoml.tracking.runs_url_for_store`); None if the store cannot tell it."""
    import mlflow  # noqa: F401 - imported first so that its logging setup is in place before we quieten it

    from trautoml.tracking import runs_url_for_store

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        return runs_url_for_store(tracking_uri, base_url)
    except Exception as exc:  # noqa: BLE001 - the UI still starts; it just opens on its home page
        print(f"trautoml: ui: cannot read the experiment ({_one_line(exc)}); open the UI's home page",
              file=sys.stderr)
        return None


def _gui_browser():
    """The system's graphical web browser, or None: none, or only a console one (lynx, w3m), which would take
    over the terminal the server runs in."""
    import webbrowser

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("BROWSER")
            or sys.platform in ("darwin", "win32")):
        return None
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return None
    if type(browser) is webbrowser.GenericBrowser:  # a console browser (or an unknown command): stay out of it
        return None
    return browser


def _open_browser_when_up(url: str, port: int, wait_s: float = 90.0) -> None:
    """Open ``url`` in a graphical browser once the server answers on ``port``; in a daemon thread, so it never
    holds the command up, and silently not at all when there is no such browser."""
    import threading
    import webbrowser

    browser = _gui_browser()
    if browser is None:
        return

    def go():
        import socket

        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                time.sleep(0.5)
                continue
            try:
                browser.open(url)
            except (OSError, webbrowser.Error):  # opening a browser is a courtesy; the URL is printed
                pass
            return

    threading.Thread(target=go, daemon=True, name="open-browser").start()


def cmd_bench(args) -> int:
    """``trautoml bench``: run the benchmark preset ``--preset`` for each of ``--backends`` (``run_bench``), print
    its table (markdown, or JSON with ``--json``) and write the report under ``--out``. Returns the exit status."""
    from trautoml.bench.report import markdown_table
    from trautoml.bench.runner import ALL_METHODS, BENCH_PRESETS, run_bench

    if args.bench_preset not in BENCH_PRESETS:
        raise BadInput(f"unknown bench preset {args.bench_preset!r}; available: {', '.join(BENCH_PRESETS)}")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    from trautoml.registry import BACKENDS

    unknown = [b for b in backends if b not in BACKENDS]
    if not backends or unknown:
        raise BadInput(f"unknown backend(s) {', '.join(unknown) or '(none given)'}; available: "
                       f"{', '.join(BACKENDS.names())}")
    if args.orders is not None and args.orders < 1:
        raise BadInput(f"--orders must be at least 1, got {args.orders}")
    try:
        scales = [float(x) for x in args.budget_scale.split(",") if x.strip()]
    except ValueError:
        raise BadInput(f"--budget-scale takes numbers separated by commas, got {args.budget_scale!r}") from None
    if not scales or any(not s > 0 for s in scales):
        raise BadInput(f"--budget-scale needs positive scales, got {args.budget_scale!r}")
    if args.reference_seeds is not None and args.reference_seeds < 1:
        raise BadInput(f"--reference-seeds must be at least 1, got {args.reference_seeds}")
    methods = ALL_METHODS if args.methods is None else \
        tuple(dict.fromkeys(["standalone"] + [m.strip() for m in args.methods.split(",") if m.strip()]))
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise BadInput(f"unknown bench method(s) {', '.join(unknown)}; available: {', '.join(ALL_METHODS)}")
    if args.stream is not None:
        from trautoml.data import load_stream

        if len(load_stream(args.stream)) < 2:  # DatasetError (exit 2) for a stream that is not one
            raise BadInput(f"bench: {args.stream} lists fewer than 2 datasets")
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    _quiet_mlflow()
    out = Path(args.out)
    results = run_bench(args.bench_preset, backends, args.orders, out, Path(args.workspace) / "bench-cache",
                        seed=args.seed, executor=args.executor, log=log, stream=args.stream, methods=methods,
                        reference_seeds=args.reference_seeds, budget_scales=scales)
    if args.json:
        print(json.dumps(results["table"], indent=2, sort_keys=True))
    else:
        print(markdown_table(results["table"]))
        print("\n" + "\n".join(f"- {v}" for v in results["verdicts"]))
        print(f"\nreport: {out / 'report.md'}" + (f"; cost against budget: {out / 'budget.md'}" if len(scales) > 1
                                                    else ""))
    return EXIT_OK


COMMANDS = {"demo": cmd_demo, "ingest": cmd_ingest, "watch": cmd_watch, "groups": cmd_groups, "show": cmd_show,
            "summary": cmd_summary, "ui": cmd_ui, "bench": cmd_bench}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _refuse_foreign_options(args) -> None:
    """A shared option given before a command that does not take it (trautoml --backend x groups) would do
    nothing: refuse it rather than ignore it."""
    if args.command == "bench":
        return
    foreign = sorted(d for d in {_dest(f) for _, opts in _SECTIONS.values() for f, _ in opts}
                     if hasattr(args, d) and d not in section_dests(args.command))
    if foreign:
        names = ", ".join("--" + d.replace("_", "-") for d in foreign)
        raise BadInput(f"{names}: not an option of 'trautoml {args.command}' (see trautoml {args.command} --help)")


def main(argv: list[str] | None = None) -> int:
    """Run the ``trautoml`` command line ``argv`` (default ``sys.argv[1:]``) and return its exit status: 0 done, 2 bad
    input (one line on stderr), 1 an unexpected failure (``TRAUTOML_DEBUG=1`` re-raises it), 130 interrupted."""
    try:
        args = build_parser().parse_args(argv)
        _refuse_foreign_options(args)
        for k, v in COMMON_DEFAULTS.items():
            if not hasattr(args, k):
                setattr(args, k, list(v) if isinstance(v, list) else v)
        return COMMANDS[args.command](args)
    except BadInput as exc:
        print(f"trautoml: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("trautoml: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # one line for people; the traceback on request
        if os.environ.get("TRAUTOML_DEBUG"):
            raise
        print(f"trautoml: failed: {type(exc).__name__}: {_one_line(exc)} (TRAUTOML_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
