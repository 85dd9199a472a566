"""pytest plugin (`-p tests.no_torch`): torch and the LTX packages cannot be imported.

`./scripts/run_tests.sh` runs tests/unit under it, so a unit test (and the code it covers: the API, services,
store and domain) that starts to need torch fails instead of silently loading a GPU stack.
"""

from __future__ import annotations

import importlib.abc
import sys

BLOCKED = ("torch", "torchaudio", "torchvision", "ltx_core", "ltx_pipelines")


class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # noqa: ANN001 - importlib's signature
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked: tests/unit must not need torch", name=name)
        return None


if any(m.partition(".")[0] in BLOCKED for m in sys.modules):
    raise RuntimeError("torch was imported before tests.no_torch could block it")
sys.meta_path.insert(0, _Blocked())
