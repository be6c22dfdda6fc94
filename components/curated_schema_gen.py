"""`CuratedSchemaGen`: a Schema artifact from a schema's text, carried in the pipeline.

TFX's `ImportSchemaGen` copies a schema file named by its path on the machine
that built the pipeline, so a compiled pipeline (Kubeflow, Vertex AI) would point
at a file its workers do not have. This component takes the schema's text as a
parameter instead: the pipeline spec carries it, TFX's cache sees when it changes,
and the executor needs nothing but the text. The output is what SchemaGen and
ImportSchemaGen write (`schema.pbtxt` in the artifact's uri), so ExampleValidator
reads it unchanged.

Examples:

```python
schema = CuratedSchemaGen(schema_text=Path("pipeline/schema/schema.pbtxt").read_text())
validator = tfx.components.ExampleValidator(
    statistics=statistics.outputs["statistics"], schema=schema.outputs["schema"])
```
"""

# No `from __future__ import annotations`: TFX reads the function's annotations
# as types to build the component spec.

import os

from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

SCHEMA_FILE_NAME = "schema.pbtxt"  # SchemaGen's and ImportSchemaGen's file name


def parse_schema(schema_text: str):
    """The `tensorflow_metadata` Schema proto of a text-format schema.

    Raises:
        google.protobuf.text_format.ParseError: the text is not a Schema.
    """
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(schema_text, schema_pb2.Schema())


@component
def CuratedSchemaGen(  # noqa: N802 (a component reads like a class)
    schema_text: Parameter[str], schema: OutputArtifact[standard_artifacts.Schema]
) -> None:
    """Writes the schema text (checked by parsing it) as `schema.pbtxt` into `schema`."""
    from tfx.utils import io_utils

    io_utils.write_pbtxt_file(
        os.path.join(schema.uri, SCHEMA_FILE_NAME), parse_schema(schema_text)
    )
