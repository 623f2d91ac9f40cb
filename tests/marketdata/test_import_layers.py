"""Market data sits below the order system: it calls up only through hooks that the apps above it
register (tick listeners, health checks, shutdown drains), never by importing them."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ABOVE_MARKETDATA = ("accounts", "brokers", "rms", "orders", "strategies", "compliance")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _reaches(names: set[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in names)


def test_marketdata_imports_no_app_above_it():
    for path in sorted((ROOT / "marketdata").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        names = _imports(path)
        assert not [app for app in ABOVE_MARKETDATA if _reaches(names, app)], path


def test_the_process_shutdown_the_feed_runs_imports_no_domain_app():
    names = _imports(ROOT / "infra" / "lifespan.py")
    assert not [app for app in (*ABOVE_MARKETDATA, "marketdata") if _reaches(names, app)]


def test_the_hub_does_not_import_the_feeds_that_publish_to_it():
    assert not _reaches(_imports(ROOT / "marketdata" / "fanout.py"), "marketdata.feeds")
    assert not _reaches(_imports(ROOT / "marketdata" / "tick_channel.py"), "marketdata.feeds")
