"""Timing and peak-memory helpers shared by the benchmark scripts (run by hand, not in CI).

The machine is shared (2 cores, other engineers' jobs), so every measurement records CPU time next to wall
time and the load average around it: CPU seconds are much less sensitive to other people's load than wall
seconds, and wall seconds on an idle machine are roughly CPU seconds / cores used.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
# The pipeline code measured: the checkout, or a frozen copy of it (`WSIS_CODE_ROOT`, see
# `snapshot_code`) so that edits made to the checkout while a long benchmark runs do not change the code
# under test (and do not invalidate the runner's cache keys between the cold and the warm run).
CODE_ROOT = Path(os.environ.get("WSIS_CODE_ROOT", ROOT))
if str(CODE_ROOT) not in sys.path:
    sys.path.insert(0, str(CODE_ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WSIS_NO_PROGRESS", "1")


def shared_dir() -> Path:
    """The ../shared folder with the real corpora (`WSIS_SHARED_DIR` overrides)."""
    env = os.environ.get("WSIS_SHARED_DIR")
    path = Path(env) if env else ROOT.parent / "shared"
    if not (path / "corpora").is_dir():
        raise SystemExit(f"no corpora under {path}: set WSIS_SHARED_DIR")
    return path


def snapshot_code(dest: Path) -> Path:
    """Copy what `wsis run` needs (pipeline/, params.yaml, models/) to `dest`; returns `dest`."""
    import shutil

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "pipeline", dest / "pipeline", ignore=ignore)
    if (ROOT / "models").is_dir():
        shutil.copytree(ROOT / "models", dest / "models", ignore=ignore)
    for name in ("params.yaml", "pyproject.toml"):
        shutil.copy(ROOT / name, dest / name)
    return dest


def git_head() -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=False)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=False)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def rss_mb() -> float:
    """Current resident set size of this process in MiB (psutil; /proc fallback)."""
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except ImportError:  # pragma: no cover - psutil is installed with the project
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def tree_rss_mb() -> float:
    """RSS of this process plus its live child processes (the clean stage's forked spaCy workers) in MiB. Pages the
    children share with the parent count in each of them, so this is an upper bound of the memory used."""
    total = rss_mb()
    for pid in _child_pids(os.getpid()):
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):  # exited between listing and reading
            pass
    return total


def _child_pids(pid: int) -> list[int]:
    """Descendants of `pid` from /proc/<pid>/task/*/children (cheap: psutil's children() scans every process,
    which at 50 Hz took a noticeable share of a core and of the GIL); none where /proc lacks it."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children", encoding="ascii") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


def max_rss_mb() -> float:
    """Lifetime peak RSS of this process (ru_maxrss, KiB on Linux) in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class PeakSampler:
    """Background thread sampling RSS every `interval` s, so the peak of one stage can be read in-process
    (ru_maxrss only gives the lifetime peak). The sample is the whole process tree (`tree_rss_mb`): worker
    processes count."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self._peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, tree_rss_mb())
            self._stop.wait(self.interval)

    def reset(self) -> None:
        self._peak = tree_rss_mb()

    @property
    def peak(self) -> float:
        return max(self._peak, tree_rss_mb())

    def __enter__(self) -> PeakSampler:
        self.reset()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Measurement:
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    rss_before_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"wall_s": round(self.wall_s, 3), "cpu_s": round(self.cpu_s, 3),
                "peak_rss_mb": round(self.peak_rss_mb, 1), "rss_before_mb": round(self.rss_before_mb, 1),
                **self.extra}


@contextmanager
def measure(sampler: PeakSampler | None = None) -> Iterator[Measurement]:
    """Wall time, CPU time and peak RSS of the block (peak needs a running `PeakSampler`)."""
    m = Measurement(rss_before_mb=rss_mb())
    if sampler is not None:
        sampler.reset()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    try:
        yield m
    finally:
        m.wall_s = time.perf_counter() - t0
        m.cpu_s = cpu_seconds() - cpu0
        m.peak_rss_mb = sampler.peak if sampler is not None else max_rss_mb()


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    """Cores, memory, CPU model, load and package versions: the context every figure needs."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1_5_15": load_average(),
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover
        pass
    try:
        from pipeline.runner import package_versions

        info["packages"] = package_versions()
    except Exception as exc:  # noqa: BLE001 - the benchmark env may lack a package
        info["packages_error"] = str(exc)
    info["git_head"] = git_head()
    info["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return info


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write `benchmarks/results/<name>.json` atomically."""
    from pipeline.io import write_json

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return write_json(payload, RESULTS_DIR / f"{name}.json")


def read_result(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def run_batches(specs: list[str], work: Path, params: Path, root: Path) -> Iterator[tuple[str, str, Path, float]]:
    """`wsis run` for each `NAME=INPUT[::MAPPING]` into `work/NAME`: yields (name, input, batch folder, seconds)."""
    import subprocess

    for spec in specs:
        name, _, rest = spec.partition("=")
        src, _, mapping = rest.partition("::")
        out = work / name
        cmd = [sys.executable, "-m", "pipeline", "run", src, "--out", str(out), "--params", str(params)]
        if mapping:
            cmd += ["--mapping", mapping]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=root, check=True, stdout=subprocess.DEVNULL)
        yield name, src, out, round(time.perf_counter() - t0, 1)


def emit(results: dict[str, Any], json_path: Path | None) -> None:
    """Print the results as JSON and, given a path, write them there too."""
    text = json.dumps(results, indent=2, ensure_ascii=False)
    print(text)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text + "\n", encoding="utf-8")
