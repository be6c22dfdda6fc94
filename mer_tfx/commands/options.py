"""What the `mer` commands share in their arguments: old option names kept for one
release, options more than one command takes, and checks that run while the arguments
are parsed. Commands import this module, never one another.

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


def add_timeline_arguments(parser: argparse.ArgumentParser) -> None:
    """--timeline, --window, --hop (`mer predict` and `mer score`)."""
    parser.add_argument(
        "--timeline", action="store_true", help="analyse each song in windows over time"
    )
    parser.add_argument(
        "--window", type=float, default=30.0, help="timeline window in seconds (default: 30)"
    )
    parser.add_argument(
        "--hop", type=float, default=10.0, help="timeline hop in seconds (default: 10)"
    )


def preset(value: str) -> presets.Preset:
    """`--preset`: a preset name or a preset's JSON, parsed now (so a bad one fails before
    any work) into the `Preset` the command uses."""
    try:
        return presets.resolve(value)
    except ParameterError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
