# The mer-tfx image: the pinned stack (constraints.txt) and this package, for
#   - every component of the pipeline compiled by pipeline/kubeflow_v2_runner.py
#     (Kubeflow Pipelines / Vertex AI run `python -m tfx.orchestration.kubeflow.v2.
#     container.kubeflow_v2_run_executor` in it: the spec sets the command);
#   - Beam's SDK harness on Flink, Spark and Dataflow workers (--environment_config /
#     --sdk_container_image, see docs/scale.md): the ENTRYPOINT is Beam's boot.
# Build from the repository root:  docker build -t REGISTRY/mer-tfx:0.2.0 .
FROM python:3.10-slim

# Beam's worker boot program, from the Beam SDK image of the pinned apache-beam version.
COPY --from=apache/beam_python3.10_sdk:2.60.0 /opt/apache/beam /opt/apache/beam

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /mer-tfx

# The package and its pinned dependencies, installed as scripts/bootstrap.sh installs
# them (editable, so files beside the modules are found as in a checkout).
COPY pyproject.toml constraints.txt README.md ./
COPY mer_tfx ./mer_tfx
COPY components ./components
COPY pipeline ./pipeline
RUN python -m pip install "pip<25" \
    && PIP_CONSTRAINT=/mer-tfx/constraints.txt python -m pip install \
        --constraint /mer-tfx/constraints.txt -e /mer-tfx \
    && python -c "import mer_tfx, components, pipeline.factory, tfx, apache_beam"

ENTRYPOINT ["/opt/apache/beam/boot"]
