"""The old `mer_tfx.serve.<module>` paths still import, warn, and give the moved objects."""

from __future__ import annotations

import importlib
import sys

import pytest

OLD_TO_NEW = {
    "client": "mer_tfx.client.rest_model",
    "local_model": "mer_tfx.client.local_model",
    "predictions": "mer_tfx.client.predictions",
    "file_predictions": "mer_tfx.client.file_predictions",
    "timeline": "mer_tfx.client.timeline",
    "rest_server": "mer_tfx.server.rest_server",
    "handler": "mer_tfx.server.handler",
    "json_codec": "mer_tfx.server.json_codec",
    "versions": "mer_tfx.server.versions",
    "servable": "mer_tfx.server.servable",
    "rest_error": "mer_tfx.server.rest_error",
    "serving_config": "mer_tfx.server.serving_config",
    "scoring": "mer_tfx.scoring.catalog",
}


@pytest.mark.parametrize("old", sorted(OLD_TO_NEW))
def test_old_path_warns_and_gives_the_same_objects(old, monkeypatch):
    old_name = f"mer_tfx.serve.{old}"
    monkeypatch.delitem(sys.modules, old_name, raising=False)
    new = importlib.import_module(OLD_TO_NEW[old])
    with pytest.warns(DeprecationWarning, match=OLD_TO_NEW[old].replace(".", r"\.")):
        shim = importlib.import_module(old_name)
    # The names `from <new> import *` gives: its __all__, else every public name.
    names = getattr(new, "__all__", [name for name in vars(new) if not name.startswith("_")])
    assert names
    assert [name for name in names if getattr(shim, name, None) is not getattr(new, name)] == []


def test_the_rest_client_keeps_its_old_name():
    sys.modules.pop("mer_tfx.serve.client", None)
    with pytest.warns(DeprecationWarning):
        from mer_tfx.serve.client import RestModel
    from mer_tfx.client.rest_model import RestModel as moved

    assert RestModel is moved
