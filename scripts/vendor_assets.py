"""Vendored front-end libraries: fetch them from the npm registry, or check them against their manifest.

    python scripts/vendor_assets.py           refresh: `npm pack` each pinned package, copy the chosen files and
                                              its license under static/vendor/<package>/, rewrite the manifest
    python scripts/vendor_assets.py --check   verify every manifest entry's SHA-256; exit 1 with one line naming
                                              the first missing or changed file

Standard library only, so `make vendor-check` runs before (and without) the virtualenv. The browser never sees a
CDN: the app serves these files itself, and the manifest is how a reviewer knows they are the registry's bytes.
"""

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = PROJECT_ROOT / "static" / "vendor"
MANIFEST_NAME = "MANIFEST.json"


@dataclass(frozen=True)
class Package:
    """One pinned npm package: which files of its tarball (paths under `package/`) are vendored, flat."""

    name: str
    version: str
    files: tuple[str, ...]
    license: str


PACKAGES = (
    Package(
        "lightweight-charts",
        "5.2.1",
        ("dist/lightweight-charts.standalone.production.js", "LICENSE"),
        "Apache-2.0",
    ),
    Package("htmx.org", "4.0.1", ("dist/htmx.min.js", "LICENSE"), "0BSD"),
    # Only the accessibility tests inject it; vendored the same way so they need no network either.
    Package("axe-core", "4.14.1", ("axe.min.js", "LICENSE", "LICENSE-3RD-PARTY.txt"), "MPL-2.0"),
)


class VendorError(Exception):
    """A one-line reason the vendored tree does not match its manifest, or a refresh failed."""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _extract(tarball: Path, member: str, target: Path) -> None:
    with tarfile.open(tarball, "r:gz") as archive:
        try:
            source = archive.extractfile(f"package/{member}")
        except KeyError:
            source = None
        if source is None:
            raise VendorError(f"{tarball.name} has no file package/{member}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with source, target.open("wb") as out:
            shutil.copyfileobj(source, out)


def _npm_pack(package: Package, workdir: Path) -> Path:
    spec = f"{package.name}@{package.version}"
    npm = shutil.which("npm")
    if npm is None:
        raise VendorError("npm is not installed: it is needed to download the vendored packages")
    completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [npm, "pack", spec, "--silent", "--pack-destination", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise VendorError(f"npm pack {spec} failed: {completed.stderr.strip().splitlines()[-1:]}")
    names = [line.strip() for line in completed.stdout.splitlines() if line.strip().endswith(".tgz")]
    if not names:
        raise VendorError(f"npm pack {spec} printed no tarball name")
    return workdir / names[-1]


def refresh(vendor_dir: Path = VENDOR_DIR, packages: tuple[Package, ...] = PACKAGES) -> list[dict[str, str]]:
    """Download every package, replace its folder under vendor_dir, write the manifest; returns its entries.

    Raises VendorError when npm is missing, a download fails or a chosen file is not in the tarball.
    """
    entries: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as temp:
        for package in packages:
            tarball = _npm_pack(package, Path(temp))
            folder = vendor_dir / package.name
            if folder.exists():
                shutil.rmtree(folder)
            for member in package.files:
                target = folder / Path(member).name
                _extract(tarball, member, target)
                entries.append(
                    {
                        "package": package.name,
                        "version": package.version,
                        "file": target.relative_to(vendor_dir).as_posix(),
                        "sha256": sha256_of(target),
                        "license": package.license,
                    }
                )
    manifest = {"source": "npm registry, via npm pack", "files": entries}
    (vendor_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return entries


def check(vendor_dir: Path = VENDOR_DIR) -> int:
    """Verify each manifest entry's SHA-256; returns how many files were checked.

    Raises VendorError naming the manifest or the first file that is missing or whose content changed.
    """
    manifest_path = vendor_dir / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        entries = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise VendorError(f"{manifest_path} is missing or unreadable ({error}): run make vendor") from error
    for entry in entries:
        path = vendor_dir / entry["file"]
        if not path.is_file():
            raise VendorError(f"static/vendor/{entry['file']} is missing: run make vendor")
        actual = sha256_of(path)
        if actual != entry["sha256"]:
            raise VendorError(
                f"static/vendor/{entry['file']} does not match its manifest "
                f"(sha256 {actual[:12]}..., expected {entry['sha256'][:12]}...): run make vendor"
            )
    return len(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="verify the vendored files against the manifest")
    args = parser.parse_args(argv)
    try:
        if args.check:
            count = check()
            print(f"static/vendor: {count} files match {MANIFEST_NAME}")
        else:
            entries = refresh()
            for entry in entries:
                print(f"{entry['package']} {entry['version']} {entry['file']} {entry['sha256']}")
    except VendorError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
