"""What the `mer` commands share in their arguments: old option names kept for one
release, and checks that run while the arguments are parsed.

Nothing here imports TensorFlow: a command's arguments are parsed (and `--help`
printed, an argument error reported) before its work imports anything heavy.
"""

from __future__ import annotations

import argparse

from mer_tfx import presets
from mer_tfx.errors import ParameterError


def add_old_names(parser: argparse.ArgumentParser, action: argparse.Action, *old: str) -> None:
    """Lets each of `old` name `action` too, for one release, without showing it.

    An old name is the same argparse action under another option string: it takes
    the same values, counts for `required` and for a mutually exclusive group exactly
    as the new name does, and is listed neither in `--help` nor in the usage line
    (which print `action.option_strings`, the new name alone).

    Example: `add_old_names(parser, parser.add_argument("--output"), "--out")`.
    """
    for name in old:
        if name in parser._option_string_actions:
            raise ValueError(f"{name} already names an option of {parser.prog}")
        parser._option_string_actions[name] = action


def preset(value: str) -> presets.Preset:
    """`--preset`: a preset name or a preset's JSON, parsed now (so a bad one fails before
    any work) into the `Preset` the command uses."""
    try:
        return presets.resolve(value)
    except ParameterError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
