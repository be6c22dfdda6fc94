"""Custom TFX components of mer-tfx: the audio ExampleGen, the log-mel transform and
`curated_schema_gen.CuratedSchemaGen` (a data-validation schema carried as text).

See docs/components.md.
"""

from components.audio_example_gen import AudioExampleGen, default_output_config
from components.log_mel_transform import LogMelTransform

__all__ = ["AudioExampleGen", "LogMelTransform", "default_output_config"]
