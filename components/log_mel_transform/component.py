"""`LogMelTransform`: a TFX component computing log-mel segments in Beam.

Examples:

```python
from components import AudioExampleGen, LogMelTransform

from mer_tfx import presets

example_gen = AudioExampleGen(input_base="/data/4q", preset=presets.get("4q-5s"))
log_mel = LogMelTransform(examples=example_gen.outputs["examples"])  # the ExampleGen's preset
trainer_input = log_mel.outputs["examples"]
```
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.log_mel_transform import executor
from components.log_mel_transform.executor import (
    BATCH_SIZE_KEY,
    DEFAULT_BATCH_SIZE,
    EXAMPLES_KEY,
    WAVEFORM_EXAMPLES_KEY,
)
from mer_tfx.errors import ParameterError


class LogMelTransformSpec(types.ComponentSpec):
    """Inputs, outputs and parameters of `LogMelTransform`."""

    PARAMETERS = {
        BATCH_SIZE_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {WAVEFORM_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


class LogMelTransform(base_beam_component.BaseBeamComponent):
    """Segments each song's waveform and computes its log-mel spectrograms.

    Input (the `examples` argument, key `waveform_examples`): the audio
    ExampleGen's Examples (with `waveform`). Output `examples`: Examples with the
    same splits, every feature but
    `waveform`, and `log_mel` (float list, row-major [segments, frames, mels]);
    gzipped TFRecords under `Split-<name>/`, plus `preset.json` and copies of
    the input's `label_info.json` and `skipped_files.csv`.

    The preset is the one the input examples record (`preset.json`, written by the
    AudioExampleGen: `components.artifact_files`), so it is always the ExampleGen's;
    the output records it again, for the Trainer.

    Args:
        examples: Channel of `standard_artifacts.Examples` from `AudioExampleGen`.
        batch_size: most songs per TensorFlow call. Defaults to 8.

    TFX names a component's inputs and outputs in one namespace; the output,
    which Trainer and Evaluator read, is the one called `examples`.
    """

    SPEC_CLASS = LogMelTransformSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        *,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
    ):
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ParameterError(
                f"batch_size must be a positive integer. Received: batch_size={batch_size!r}"
            )
        spec = LogMelTransformSpec(
            **{
                WAVEFORM_EXAMPLES_KEY: examples,
                BATCH_SIZE_KEY: batch_size,
                EXAMPLES_KEY: types.Channel(type=standard_artifacts.Examples),
            }
        )
        super().__init__(spec=spec)
