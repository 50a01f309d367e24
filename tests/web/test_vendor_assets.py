"""The vendored front-end files are the npm registry's bytes: the committed tree matches its manifest, and any
change to a file (or a missing one) fails the check with one line naming it."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "vendor_assets.py"


@pytest.fixture(scope="module")
def vendor() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vendor_assets", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_tree_matches_manifest(vendor: ModuleType) -> None:
    manifest = json.loads((PROJECT_ROOT / "static" / "vendor" / "MANIFEST.json").read_text())
    packages = {(entry["package"], entry["version"]) for entry in manifest["files"]}
    assert packages == {("lightweight-charts", "5.2.1"), ("htmx.org", "4.0.1"), ("axe-core", "4.14.1")}
    # Every package ships its license beside the code.
    for name, _ in packages:
        assert any(entry["file"] == f"{name}/LICENSE" for entry in manifest["files"])
    assert vendor.check(PROJECT_ROOT / "static" / "vendor") == len(manifest["files"])


def test_tampered_file_fails_naming_it(vendor: ModuleType, tmp_path: Path) -> None:
    copy = tmp_path / "vendor"
    shutil.copytree(PROJECT_ROOT / "static" / "vendor", copy)
    with (copy / "htmx.org" / "htmx.min.js").open("a") as handle:
        handle.write("\n/* changed */\n")
    with pytest.raises(vendor.VendorError, match=r"static/vendor/htmx.org/htmx.min.js does not match its manifest"):
        vendor.check(copy)


def test_missing_file_fails_naming_it(vendor: ModuleType, tmp_path: Path) -> None:
    copy = tmp_path / "vendor"
    shutil.copytree(PROJECT_ROOT / "static" / "vendor", copy)
    (copy / "lightweight-charts" / "LICENSE").unlink()
    with pytest.raises(vendor.VendorError, match=r"static/vendor/lightweight-charts/LICENSE is missing"):
        vendor.check(copy)


def test_command_line_check_exits_zero_on_the_real_tree() -> None:
    completed = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert "files match MANIFEST.json" in completed.stdout
