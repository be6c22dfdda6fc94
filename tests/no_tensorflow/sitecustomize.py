"""Makes `import tensorflow` fail in every Python process that has this folder on PYTHONPATH.

Python imports `sitecustomize` at start-up, before any test or library code, so
the process behaves like a machine without TensorFlow (the JAX GPU machine, a
researcher's JAX or PyTorch install): any import of TensorFlow from
`mer_tfx.layers`, `mer_tfx.models` or what they use fails loudly.
tests/test_jax_backend.py runs the layer and model tests this way.
"""

import importlib.abc
import sys

BLOCKED = "tensorflow"


class _NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == BLOCKED or name.startswith(BLOCKED + "."):
            raise ModuleNotFoundError(
                f"No module named {name!r} (blocked by tests/no_tensorflow/sitecustomize.py)",
                name=name,
            )
        return None


sys.meta_path.insert(0, _NoTensorFlow())
