"""Tests of the output layout and of where the pipeline's data comes from."""

from __future__ import annotations

import pytest

from mer_tfx.errors import DatasetError
from pipeline import configs
from pipeline.layout import Layout, prepare_data


def test_layout_follows_tf_serving_convention(tmp_path):
    layout = Layout(output=tmp_path, pipeline_name="p", model_name="mer")
    assert layout.serving_base == tmp_path / "serving_model" / "mer"
    assert layout.pipeline_root == tmp_path / "tfx" / "p"
    assert layout.metadata_path == tmp_path / "tfx" / "metadata.sqlite"
    assert layout.synthetic_data == tmp_path / "synthetic_data"


def test_layout_output_comes_from_argument_then_environment_then_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv(configs.ENV_OUTPUT, str(tmp_path / "from-env"))
    assert Layout.at(tmp_path / "given").output == tmp_path / "given"
    layout = Layout.at()
    assert layout.output == tmp_path / "from-env"
    assert (layout.pipeline_name, layout.model_name) == ("mer-tfx", "mer")
    monkeypatch.delenv(configs.ENV_OUTPUT)
    monkeypatch.chdir(tmp_path)  # where the user is, not beside the installed package
    assert Layout.at().output == tmp_path / "outputs"


def test_prepare_data_checks_a_given_path(tmp_path):
    layout = Layout(output=tmp_path / "out", pipeline_name="p", model_name="m")
    assert prepare_data(str(tmp_path), layout=layout) == tmp_path.resolve()
    with pytest.raises(DatasetError, match="does not exist"):
        prepare_data(str(tmp_path / "missing"), layout=layout)


def test_prepare_data_writes_the_synthetic_set_once(tmp_path, capsys):
    layout = Layout(output=tmp_path, pipeline_name="p", model_name="m")
    path = prepare_data(None, layout=layout, clips_per_quadrant=1, seconds=1.0)
    assert path == layout.synthetic_data
    wavs = sorted(p.name for p in path.glob("Q*/*.wav"))
    assert len(wavs) >= 4  # one playable clip per quadrant (+ the corrupt one)
    assert "writing the synthetic 4Q dataset" in capsys.readouterr().err
    again = prepare_data(None, layout=layout, clips_per_quadrant=1, seconds=1.0)
    assert again == path and "already in" in capsys.readouterr().err
    assert sorted(p.name for p in path.glob("Q*/*.wav")) == wavs
