"""Set-up steps behind `make setup`: each is idempotent and skips itself when nothing changed.

A step's inputs are hashed into a stamp file next to its output, so a second run
costs a hash and a stat, not a download.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import Console

from cryptopulse.config import PROJECT_ROOT, Settings
from cryptopulse.errors import CryptoPulseError

MAVEN_DIR = PROJECT_ROOT / "platform" / "maven"
WEB_DIR = PROJECT_ROOT / "web"
CHROMIUM = Path("/usr/bin/chromium")
# Without a colour emoji font, headless Chromium draws the trend emoji as empty boxes.
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")


def _digest(paths: Iterable[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        h.update(str(path.relative_to(PROJECT_ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _fresh(stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text().strip() == digest


def _run(cmd: list[str], console: Console, what: str, cwd: Path = PROJECT_ROOT) -> None:
    """Run a set-up command, showing its latest output line as progress."""
    if not console.is_terminal:
        console.print(f"{what} ...")  # logs and CI get a line; a terminal gets a live status
    with console.status(f"{what} ...") as status:
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-19:], line]
            if line:
                status.update(f"{what} ... [dim]{line[-100:]}[/dim]")
        if proc.wait() != 0:
            raise CryptoPulseError(f"{what} failed:\n" + "\n".join(tail))


def resolve_jars(pom: Path, dest: Path, console: Console) -> bool:
    """Copy a Maven manifest's jars and their dependencies into dest; False when already there."""
    stamp = dest / ".stamp"
    digest = _digest([pom])
    if _fresh(stamp, digest):
        return False
    mvn = shutil.which("mvn")
    if mvn is None:
        raise CryptoPulseError("Maven was not found: install it (`apt-get install maven`).")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        _run(
            [
                mvn,
                "--batch-mode",
                "--no-transfer-progress" if os.environ.get("CI") else "-Dstyle.color=never",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            console,
            f"Resolving {pom.stem} jars with Maven",
        )
        jars = list(staging.glob("*.jar"))
        (staging / ".stamp").write_text(digest)
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = sum(j.stat().st_size for j in dest.glob("*.jar")) / 1e6
    console.print(f"[green]✓[/green] {len(jars)} jars ({size:.0f} MB) in {dest}")
    return True


def build_web(console: Console) -> bool:
    """npm ci when the lock file changed, npm run build when any web source changed."""
    if not (WEB_DIR / "package.json").exists():
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise CryptoPulseError("npm was not found: install Node.js 20 or newer with npm.")
    changed = False
    deps_stamp = WEB_DIR / "node_modules" / ".cryptopulse-stamp"
    deps_digest = _digest([WEB_DIR / "package-lock.json"])
    if not _fresh(deps_stamp, deps_digest):
        _run(
            [npm, "ci", "--no-audit", "--no-fund"],
            console,
            "Installing web packages (npm ci)",
            WEB_DIR,
        )
        deps_stamp.write_text(deps_digest)
        changed = True
    sources = [
        p
        for p in WEB_DIR.rglob("*")
        if p.is_file() and not {"node_modules", "dist"} & set(p.relative_to(WEB_DIR).parts)
    ]
    build_stamp = WEB_DIR / "dist" / ".cryptopulse-stamp"
    build_digest = _digest(sources)
    if not _fresh(build_stamp, build_digest):
        _run([npm, "run", "build"], console, "Building the web app", WEB_DIR)
        build_stamp.write_text(build_digest)
        changed = True
    return changed


def ensure_chromium(console: Console) -> bool:
    """Install Debian's Chromium and an emoji font (for the browser tests) when missing."""
    missing = [
        pkg
        for path, pkg in ((CHROMIUM, "chromium"), (EMOJI_FONT, "fonts-noto-color-emoji"))
        if not path.exists()
    ]
    if not missing:
        return False
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise CryptoPulseError(
            f"Missing for the browser tests: {', '.join(missing)}; "
            f"install with `sudo apt-get install {' '.join(missing)}`."
        )
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    _run([*env_cmd, apt, "update", "-q"], console, "Updating apt package lists")
    _run(
        [*env_cmd, apt, "install", "-y", "-q", *missing],
        console,
        f"Installing {', '.join(missing)} (apt)",
    )
    console.print(f"[green]✓[/green] installed {', '.join(missing)}")
    return True


def provision_all(settings: Settings, *, web: bool, browser: bool, console: Console) -> None:
    steps: list[tuple[str, Callable[[], bool]]] = [
        (
            "Kafka broker jars",
            lambda: resolve_jars(MAVEN_DIR / "kafka.pom.xml", settings.kafka_lib_dir, console),
        ),
        (
            "Spark Kafka connector jars",
            lambda: resolve_jars(
                MAVEN_DIR / "spark-kafka.pom.xml", settings.spark_jars_dir, console
            ),
        ),
    ]
    if web:
        steps.append(("web app", lambda: build_web(console)))
    if browser:
        steps.append(("Chromium", lambda: ensure_chromium(console)))
    for name, step in steps:
        if not step():
            console.print(f"[dim]✓ {name}: up to date[/dim]")
