"""docs/architecture.md walks an order and a tick module by module: every module and name it enters
exists, in the order given, and no module is entered twice in one walk."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text()
# A step: "N. **What** `path` `Name.attr`" (the name is optional for a template).
STEP = re.compile(r"^(\d+)\. \*\*[^*]+\*\* `([\w/.]+)`(?: `([\w.]+)`)?", re.MULTILINE)


def _walk(title: str) -> list[tuple[int, str, str | None]]:
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    section = DOC[start : end if end != -1 else len(DOC)]
    return [(int(n), path, name) for n, path, name in STEP.findall(section)]


WALKS = {"The order flow": 13, "The tick flow": 10}


@pytest.mark.parametrize("title", WALKS)
def test_a_walk_numbers_its_steps_in_order_and_enters_each_module_once(title):
    steps = _walk(title)
    assert [n for n, _, _ in steps] == list(range(1, WALKS[title] + 1))
    paths = [path for _, path, _ in steps]
    assert len(paths) == len(set(paths)), f"a module entered twice: {paths}"


@pytest.mark.parametrize("title", WALKS)
def test_every_module_and_name_a_walk_enters_exists(title):
    for _, path, name in _walk(title):
        assert (ROOT / path).is_file(), path
        if not path.endswith(".py"):
            continue
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        if name:
            target = module
            for part in name.split("."):
                assert hasattr(target, part), f"{path} has no {name}"
                target = getattr(target, part)


def test_the_order_walk_ends_where_the_tick_walk_hands_over():
    order = {path for _, path, _ in _walk("The order flow")}
    tick = _walk("The tick flow")
    assert tick[-1][1] in order  # fills from matching take the order's ledger, audit and push steps


def test_place_order_enters_the_walks_modules_in_the_walks_order():
    import inspect

    from orders.services.placement import place_order

    source = inspect.getsource(place_order)
    calls = ["check_numbers(", "lock_accounts(", "risk_state(", "check_pre_trade(", "refresh_margin("]
    calls += ["_send_in_transaction(", "apply_held_updates("]
    positions = [source.index(call) for call in calls]
    assert positions == sorted(positions)
