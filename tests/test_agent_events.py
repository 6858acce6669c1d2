"""Agent events (source ``agent``): one builder, and every name the code emits documented.

The names are read from the code itself (its syntax tree), not from a list kept by hand: every
call of :func:`shipper.agent_events.agent_event` (and of the helpers that pass a name through to
it), every ``make_event(source="agent", ...)`` of the pure parsers, and every ``AgentWarning`` a
poller can return. A name the scan cannot read (built at run time) fails the test, so a new
agent event cannot escape the check by accident.
"""

from __future__ import annotations

import ast
import re
import time
from datetime import datetime
from pathlib import Path
from typing import get_args

from parsers.events import CATEGORIES, LEVELS, make_event
from shipper.agent_events import Category, Level, agent_event

ROOT = Path(__file__).resolve().parent.parent
CODE = sorted([*ROOT.joinpath("parsers").rglob("*.py"), *ROOT.joinpath("shipper").rglob("*.py")])
EVENTS_MD = ROOT / "docs" / "events.md"
BUILDER = "agent_event"


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _enclosing_functions(tree: ast.AST) -> dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Each node -> the innermost function it is written in."""
    owner: dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef] = {}

    def visit(node: ast.AST, fn: ast.FunctionDef | ast.AsyncFunctionDef | None) -> None:
        for child in ast.iter_child_nodes(node):
            if fn is not None:
                owner[child] = fn
            visit(child, child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else fn)

    visit(tree, None)
    return owner


def _param_index(fn: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> int | None:
    """The position of parameter ``name`` in the calls of ``fn`` (``self`` not counted), or None."""
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    if params and params[0] in ("self", "cls"):
        params = params[1:]
    return params.index(name) if name in params else None


def _name_argument(call: ast.Call, builders: dict[str, int]) -> ast.expr | None:
    """The expression giving the agent event name of ``call``, or None when it builds no agent event."""
    fname = _call_name(call)
    if fname in builders:
        pos = builders[fname]
        return call.args[pos] if len(call.args) > pos else _keyword(call, "name")
    if fname == "make_event":
        src = _keyword(call, "source")
        if isinstance(src, ast.Constant) and src.value == "agent":
            return _keyword(call, "event")
    if fname == "AgentWarning":  # a poller's warning, sent by the redis source as an agent event
        return call.args[0] if call.args else _keyword(call, "event")
    return None


def emitted_agent_event_names() -> tuple[dict[str, list[str]], list[str]]:
    """(name -> where it is emitted, the places whose name the scan could not read)."""
    names: dict[str, list[str]] = {}
    unreadable: list[str] = []
    warnings_passed_through = False
    for path in CODE:
        tree = ast.parse(path.read_text(), str(path))
        rel = str(path.relative_to(ROOT))
        owner = _enclosing_functions(tree)
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        # the builder, and the helpers of this module that hand one of their parameters to a
        # builder as the name (RedisSource._agent_event, cluster_topology.diff's add): name -> position
        builders = {BUILDER: 0}
        helpers: set[ast.AST] = set()
        grew = True
        while grew:
            grew = False
            for call in calls:
                arg, fn = _name_argument(call, builders), owner.get(call)
                if isinstance(arg, ast.Name) and fn is not None and call not in helpers:
                    pos = _param_index(fn, arg.id)
                    if pos is not None:
                        builders.setdefault(fn.name, pos)
                        helpers.add(call)
                        grew = True
        for call in calls:
            arg = _name_argument(call, builders)
            if arg is None or call in helpers:
                continue
            where = f"{rel}:{call.lineno}"
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.setdefault(arg.value, []).append(where)
            elif isinstance(arg, ast.Name) and (constant := _module_constant(tree, arg.id)) is not None:
                names.setdefault(constant, []).append(where)
            elif isinstance(arg, ast.Attribute) and arg.attr == "event" and rel == "shipper/sources/redis/source.py":
                warnings_passed_through = True  # an AgentWarning's name: read where the pollers make them
            else:
                unreadable.append(where)
    assert warnings_passed_through, "the redis source no longer sends AgentWarning events: update this scan"
    return names, unreadable


def _module_constant(tree: ast.Module, name: str) -> str | None:
    """The value of ``NAME = "..."`` at the top of the module, or None."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets) \
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return node.value.value
    return None


def documented_agent_event_names() -> set[str]:
    """The names in the first column of the agent-events table of docs/events.md."""
    text = EVENTS_MD.read_text()
    section = re.search(r"^## \d+\. Agent events\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, "docs/events.md has no '## N. Agent events' section"
    names: set[str] = set()
    for line in section.group(1).splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def test_every_agent_event_the_code_emits_is_documented_and_every_documented_one_is_emitted() -> None:
    emitted, unreadable = emitted_agent_event_names()
    assert unreadable == [], f"agent event names the scan cannot read (use a literal name): {unreadable}"
    documented = documented_agent_event_names()
    undocumented = {n: emitted[n] for n in sorted(emitted.keys() - documented)}
    assert undocumented == {}, "agent events missing from the agent-events table of docs/events.md"
    assert sorted(documented - emitted.keys()) == [], "documented agent events that no code emits"


def test_the_scan_finds_the_agent_events_of_every_part_of_the_agent() -> None:
    """The scan reads the builder's calls, the helpers that pass a name on, the parsers' own
    events and the pollers' warnings: one name from each kind of place."""
    emitted, _ = emitted_agent_event_names()
    where = {name: {w.split(":")[0] for w in places} for name, places in emitted.items()}
    assert "shipper/pipeline/spool.py" in where["spool_overflow"]
    assert "shipper/pipeline/spool_reset.py" in where["state_reset"]  # through a module constant
    assert "shipper/audit/anchor.py" in where["chain_anchor"]
    assert "shipper/sources/files/state.py" in where["data_gap"]
    assert "shipper/sources/redis/source.py" in where["redis_unreachable"]  # through RedisSource._agent_event
    assert "shipper/sources/redis/latency.py" in where["latency_monitor_disabled"]  # an AgentWarning
    assert "parsers/replies/info.py" in where["role_changed"]
    assert "parsers/cluster_topology.py" in where["cluster_node_failed"]  # through diff()'s add()


def test_no_part_of_the_agent_builds_an_agent_event_but_the_builder() -> None:
    """In ``shipper/``, ``source="agent"`` is passed once: by the builder."""
    places = [str(p.relative_to(ROOT)) for p in sorted(ROOT.joinpath("shipper").rglob("*.py"))
              for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.keyword)
              and node.arg == "source" and isinstance(node.value, ast.Constant) and node.value.value == "agent"]
    assert places == ["shipper/agent_events.py"]


def test_an_agent_event_has_the_shape_of_every_event_with_its_fields() -> None:
    ev = agent_event("data_gap", "1024 bytes of /var/log/redis/redis.log were lost", level="warning",
                     at=1_795_632_347.023, file="/var/log/redis/redis.log", start=0, end=1024)
    assert ev == make_event(
        timestamp="2026-11-25T18:45:47.023000Z", source="agent", category="other", event="data_gap", level="warning",
        message="1024 bytes of /var/log/redis/redis.log were lost",
        fields={"file": "/var/log/redis/redis.log", "start": 0, "end": 1024})


def test_an_agent_event_is_stamped_now_unless_told_when() -> None:
    before = time.time()
    ev = agent_event("source_crashed", "source files crashed", source_name="files", error="boom")
    stamped = datetime.fromisoformat(ev["timestamp"]).timestamp()
    assert before - 1e-6 <= stamped <= time.time() + 1e-6
    assert (ev["level"], ev["category"]) == ("warning", "other")


def test_the_builder_types_name_every_category_and_the_levels_of_log_lines_plus_error() -> None:
    assert get_args(Category) == CATEGORIES
    assert get_args(Level) == (*LEVELS, "error")
