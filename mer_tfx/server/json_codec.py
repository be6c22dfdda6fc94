"""TF Serving's predict JSON <-> NumPy arrays of a signature's inputs and outputs.

`decode_predict_request` parses a `:predict` body (row `instances` or columnar
`inputs`, strings as text or `{"b64": ...}`) into the arrays a signature takes,
checking dtype, shape and range so that a bad body is a 400 with its reason;
`encode_predict_response` renders the outputs as `{"predictions": ...}` or
`{"outputs": ...}`, outputs named `*_bytes` in base64, as TF Serving does.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from mer_tfx.contract import SERVING_DEFAULT
from mer_tfx.server.rest_error import RestError
from mer_tfx.server.servable import Servable

DEFAULT_SIGNATURE = SERVING_DEFAULT

_WEB_SAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# `"b64": "` where a base64 value starts; JSON whitespace around the colon allowed.
_B64_VALUE_START = re.compile(rb'"b64"[ \t\r\n]*:[ \t\r\n]*"')
# Values shorter than this go through json.loads as usual (not worth lifting).
_LIFT_MIN_CHARS = 4096


# Kept hand-written because they are faster: the two functions below replace json.loads on the whole
# body and base64.b64decode(validate=True). For one 30 s clip's serving_wav body (1.76 MB),
# min of 7 x 20 calls on the 2-core Xeon under load, 2026-12-02: json.loads 4.0-5.7 ms vs
# lifting 0.1 ms; b64decode(validate=True) 11.5-24.4 ms vs _b64decode 5.0-5.5 ms. The REST
# b64 WAV p50 they are part of: `.venv/bin/python benchmarks/serving_benchmark.py` (26 ms).
def _parse_json_lifting_b64(body: bytes) -> Tuple[Any, Dict[str, bytes]]:
    """`json.loads(body)`, with large base64 values cut out of the text first.

    A 30 s clip is 1.76 MB of base64, and json.loads spends ~1.5 ms copying it into
    a str and scanning it for escapes. Base64 holds neither quotes nor backslashes,
    so a `"b64": "...` value ends at the next quote: each large value without a
    backslash is replaced by a placeholder string unique to this request, and
    `_decode_string` decodes the original bytes where the placeholder lands. The
    parse tree is json.loads' own with those strings swapped, so the checks
    downstream are unchanged. A character json.loads would reject inside a lifted
    value (a raw control character, invalid UTF-8) is outside the base64 alphabet,
    so the strict decode answers 400 for it instead.

    Returns:
        (parsed JSON, {placeholder: base64 bytes}).
    """
    lifted: Dict[str, bytes] = {}
    pieces: List[bytes] = []
    copied = search = 0
    nonce = ""
    while True:
        match = _B64_VALUE_START.search(body, search)
        if match is None:
            break
        start = match.end()
        end = body.find(b'"', start)
        if end < 0:
            break
        if end - start >= _LIFT_MIN_CHARS and body.find(b"\\", start, end) < 0:
            nonce = nonce or os.urandom(8).hex()
            placeholder = f"{nonce}:{len(lifted)}"
            # "\u0000" in the JSON text: a NUL first character, which no base64 text has.
            pieces += [body[copied:start], b"\\u0000" + placeholder.encode("ascii")]
            lifted["\x00" + placeholder] = body[start:end]
            copied = end
        search = end + 1
    if not lifted:
        return json.loads(body), lifted
    pieces.append(body[copied:])
    try:
        return json.loads(b"".join(pieces)), lifted
    except ValueError:
        # Malformed elsewhere: parse the client's own text, so the error's line and
        # column point into the request as sent.
        return json.loads(body), {}


def _b64decode(text: str | bytes, where: str) -> bytes:
    """Strict base64 (standard or web-safe alphabet) -> bytes, or RestError(400).

    `base64.b64decode(validate=True)` checks with a regular expression (~20 ms for
    a 30 s WAV). The lenient C decoder skips characters outside the alphabet, so a
    decoded length different from what the text's length implies means the text
    was not valid base64: the same check for free.
    """
    if isinstance(text, str):
        try:
            text = text.encode("ascii")
        except UnicodeEncodeError:
            raise RestError(400, f"{where}: invalid base64 in b64 value") from None
    if b"-" in text or b"_" in text:
        text = text.translate(_WEB_SAFE_TO_STANDARD)
    if len(text) % 4:
        raise RestError(400, f"{where}: invalid base64 in b64 value (length not a multiple of 4)")
    try:
        data = binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        raise RestError(400, f"{where}: invalid base64 in b64 value") from None
    padding = 2 if text.endswith(b"==") else 1 if text.endswith(b"=") else 0
    if len(data) != len(text) // 4 * 3 - padding:
        raise RestError(400, f"{where}: invalid base64 in b64 value")
    return data


def _decode_string(value: Any, where: str, lifted: Mapping[str, bytes]) -> bytes:
    """One JSON string (text or {"b64": ...}) -> bytes; `lifted` as in `_parse_json_lifting_b64`."""
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise RestError(400, f'{where}: a string value must be a string or {{"b64": "..."}}')
        return _b64decode(lifted.get(value["b64"], value["b64"]), where)
    if isinstance(value, str):
        original = lifted.get(value)
        return value.encode("utf-8") if original is None else original
    raise RestError(
        400, f"{where}: expected a string for DT_STRING, got {_json_type(value)} {value!r:.40}"
    )


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    return {
        bool: "a boolean",
        type(None): "null",
        str: "a string",
        dict: "an object",
        list: "a list",
    }.get(type(value), type(value).__name__)


def _flatten(value: Any, rank: int, where: str) -> Tuple[list, Tuple[int, ...]]:
    """Nested JSON lists, `rank` levels deep -> (their leaves in order, shape), or RestError(400).

    Walks one level at a time (no recursion, so no nesting depth can exhaust the stack):
    a list nested deeper than `rank` shows up as a leaf and is refused by the caller.
    An empty list before the last level ends the walk with a shorter shape, which the
    shape check refuses.
    """
    level, shape = [value], []
    for depth in range(rank):
        if not level:
            break
        lengths = set()
        children: list = []
        for item in level:
            if not isinstance(item, list):
                raise RestError(
                    400,
                    f"{where}: expected a tensor of rank {rank} (lists nested {rank} deep), "
                    f"got {_json_type(item)} at depth {depth}",
                )
            lengths.add(len(item))
            if len(level) > 1:
                children.extend(item)
        if len(level) == 1:
            children = level[0]  # one list: its items as they are, not a copy (a long clip)
        if len(lengths) != 1:
            raise RestError(
                400, f"{where}: all lists at one depth must have the same length (ragged tensor)"
            )
        shape.append(lengths.pop())
        level = children
    return level, tuple(shape)


# The leaf types (JSON numbers, strings, booleans) each dtype accepts; TF Serving refuses
# a boolean for a number and a number for a boolean likewise.
def _accepted_leaf_types(dtype) -> Tuple[type, ...]:
    import tensorflow as tf

    if dtype.is_floating:
        return (float, int)
    if dtype.is_integer:
        return (int,)
    if dtype == tf.bool:
        return (bool,)
    return ()


def _to_array(
    value: Any,
    *,
    dtype,
    where: str,
    rank: int | None = None,
    lifted: Mapping[str, bytes] | None = None,
) -> np.ndarray:
    """A JSON value -> NumPy array of a signature input's dtype and `rank`, or RestError(400).

    Lists nested deeper than `rank` are refused (as is anything but the dtype's JSON type:
    booleans, null or strings for a number). `rank=None` (an input of unknown rank) takes
    whatever rectangular nesting NumPy accepts.
    """
    import tensorflow as tf

    if rank is None:
        rank = _first_path_depth(value, where)
    leaves, shape = _flatten(value, rank, where)
    if dtype == tf.string:
        decoded = [_decode_string(leaf, where, lifted or {}) for leaf in leaves]
        array = np.empty(len(decoded), dtype=object)
        array[:] = decoded
        return array.reshape(shape)
    accepted = _accepted_leaf_types(dtype)
    if not accepted:
        raise RestError(
            400, f"{where}: inputs of dtype {dtype.name} are not supported by this server"
        )
    kinds = set(map(type, leaves))
    wrong = kinds - set(accepted)
    if wrong:
        if list in wrong:
            problem = f"lists nested deeper than the input's rank {rank}"
        elif float in wrong and int in accepted:
            problem = "floating point values"
        else:
            kind = min(wrong, key=lambda k: k.__name__)
            example = next(leaf for leaf in leaves if type(leaf) is kind)
            problem = f"{_json_type(example)} ({json.dumps(example)[:40]})"
        expected = "booleans" if dtype == tf.bool else "integers" if dtype.is_integer else "numbers"
        raise RestError(400, f"{where}: expected {expected} for {dtype.name}, got {problem}")
    if dtype.is_floating:
        # Straight to the input's dtype: no float64 copy of a long clip on the way.
        try:
            with np.errstate(over="ignore"):
                array = np.fromiter(leaves, dtype=dtype.as_numpy_dtype, count=len(leaves))
        except OverflowError:  # an integer too large for any float
            raise RestError(400, f"{where}: value out of range for {dtype.name}") from None
        array = array.reshape(shape)
        if array.size and not np.isfinite(array.max()):
            # NaN/inf reach the model, whose checks reject them (like TF Serving); a finite
            # value beyond the dtype's range would silently have become inf.
            limit = float(np.finfo(array.dtype).max)
            if any(abs(x) > limit and abs(x) != float("inf") for x in leaves):
                raise RestError(
                    400,
                    f"{where}: value out of range for {dtype.name} (|x| > {limit:.4g})",
                )
        return array
    if dtype.is_integer and leaves:
        low, high = min(leaves), max(leaves)
        if low < dtype.min or high > dtype.max:
            raise RestError(400, f"{where}: value out of range for {dtype.name}: [{low}, {high}]")
    return np.array(leaves, dtype=dtype.as_numpy_dtype).reshape(shape)


def _first_path_depth(value: Any, where: str, *, limit: int = 32) -> int:
    """How deep lists nest along the first elements (for an input of unknown rank)."""
    depth = 0
    while isinstance(value, list) and value:
        depth += 1
        if depth > limit:
            raise RestError(400, f"{where}: lists nested more than {limit} deep")
        value = value[0]
    return depth + (1 if isinstance(value, list) else 0)


def _check_shape(array: np.ndarray, spec, where: str) -> None:
    expected = spec.shape
    if expected.rank is None:
        return
    dims = expected.as_list()
    if array.ndim != len(dims) or any(
        d is not None and d != a for d, a in zip(dims, array.shape, strict=True)
    ):
        shown = "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
        raise RestError(
            400,
            f"{where}: expected a tensor of shape {shown} ({spec.dtype.name}), got shape {list(array.shape)}",
        )


def decode_predict_request(
    body: bytes, servable: Servable
) -> Tuple[str, Dict[str, np.ndarray], bool]:
    """Parses a `:predict` body for a servable.

    Returns:
        (signature name, {input name: array}, row_format).

    Raises:
        RestError: 400 for malformed requests, 404 for an unknown signature.
    """
    try:
        request, lifted = _parse_json_lifting_b64(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RestError(400, f"JSON Parse error: {error}") from None
    except RecursionError:
        raise RestError(400, "JSON Parse error: arrays or objects nested too deep") from None
    if not isinstance(request, dict):
        raise RestError(
            400, "JSON Value: the request must be a JSON object with 'instances' or 'inputs'"
        )
    signature_name = request.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature_name, str):
        raise RestError(400, f"'signature_name' must be a string. Received: {signature_name!r:.40}")
    has_instances, has_inputs = "instances" in request, "inputs" in request
    if has_instances == has_inputs:
        raise RestError(
            400,
            "Missing 'inputs' or 'instances' key"
            if not has_instances
            else "Not both 'inputs' and 'instances' keys",
        )
    if not servable.has_signature(signature_name):
        raise RestError(
            404,
            f'Serving signature name: "{signature_name}" not found in signature def. '
            f"Available: {', '.join(servable.signature_names)}",
        )
    specs = servable.input_specs(signature_name)
    names = sorted(specs)
    if has_instances:
        instances = request["instances"]
        if not isinstance(instances, list) or not instances:
            raise RestError(
                400, "'instances' must be a non-empty JSON list, one element per example"
            )
        columns: Dict[str, list] = {name: [] for name in names}
        for index, instance in enumerate(instances):
            named = isinstance(instance, dict) and set(instance) != {"b64"}
            if named:
                if set(instance) != set(names):
                    raise RestError(
                        400,
                        f"instances[{index}]: expected the inputs {names}, got {sorted(instance)}",
                    )
                for name in names:
                    columns[name].append(instance[name])
            elif len(names) == 1:
                columns[names[0]].append(instance)
            else:
                raise RestError(
                    400,
                    f"instances[{index}]: the signature has inputs {names}; send objects keyed by name",
                )
        raw = columns
    else:
        inputs = request["inputs"]
        if isinstance(inputs, dict) and set(inputs) != {"b64"}:
            if set(inputs) != set(names):
                raise RestError(400, f"'inputs': expected the inputs {names}, got {sorted(inputs)}")
            raw = inputs
        elif len(names) == 1:
            raw = {names[0]: inputs}
        else:
            raise RestError(
                400, f"'inputs': the signature has inputs {names}; send an object keyed by name"
            )
    arrays = {}
    for name in names:
        where = f"input '{name}'"
        spec = specs[name]
        array = _to_array(
            raw[name], dtype=spec.dtype, where=where, rank=spec.shape.rank, lifted=lifted
        )
        _check_shape(array, spec, where)
        arrays[name] = array
    return signature_name, arrays, has_instances


def _jsonable(name: str, array: np.ndarray) -> Any:
    if array.dtype == object or array.dtype.kind == "S":
        as_b64 = name.endswith("_bytes")

        def convert(item):
            if isinstance(item, list):
                return [convert(x) for x in item]
            if as_b64:
                return {"b64": base64.b64encode(item).decode("ascii")}
            return item.decode("utf-8", errors="replace")

        return convert(array.tolist())
    return array.tolist()


def encode_predict_response(outputs: Mapping[str, np.ndarray], *, row_format: bool) -> dict:
    """Model outputs -> TF Serving's `{"predictions": ...}` or `{"outputs": ...}`."""
    names = sorted(outputs)
    if not row_format:
        if len(names) == 1:
            return {"outputs": _jsonable(names[0], outputs[names[0]])}
        return {"outputs": {name: _jsonable(name, outputs[name]) for name in names}}
    batch_sizes = {outputs[name].shape[0] if outputs[name].ndim else None for name in names}
    if len(batch_sizes) != 1 or None in batch_sizes:
        raise RestError(
            500, "Output tensors do not share one batch size; use the columnar 'inputs' format"
        )
    columns = {name: _jsonable(name, outputs[name]) for name in names}
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    size = batch_sizes.pop()
    return {"predictions": [{name: columns[name][i] for name in names} for i in range(size)]}
