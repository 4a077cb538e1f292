"""What the measuring demos share: the FaceBlit data option, comma-separated
lists on the command line, and the JSON they save."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "faceblit"


def comma_list(kind, *, check=None, what="values"):
    """An argparse type: ``"a,b,c"`` -> ``[kind(a), kind(b), kind(c)]``, at
    least one, each passing ``check`` (named ``what`` in the error)."""
    def parse(text):
        try:
            values = [kind(t) for t in text.split(",") if t]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} separated by commas, got {text!r}") from None
        if not values or (check is not None and not all(check(v) for v in values)):
            raise argparse.ArgumentTypeError(f"expected {what} separated by commas, got {text!r}")
        return values
    return parse


def add_data_arg(parser):
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="FaceBlit test material (default ../shared/data/faceblit)")
    parser.add_argument("--json", type=Path, help="save the rows and the environment here")


def add_scale_args(parser, what, factors):
    """``--factors`` (enlargements of ``what``, default ``factors``) and
    ``--styles`` (FaceBlit styles), for the two scale demos."""
    shown = ",".join(f"{k:g}" for k in factors)
    parser.add_argument("--factors", type=comma_list(float, check=lambda k: k > 0,
                                                     what="numbers > 0"),
                        default=list(factors), help=f"enlargements of {what} (default {shown})")
    parser.add_argument("--styles", type=comma_list(str, what="style names"),
                        default=["lincolnbust", "het", "bronzestatue"],
                        help="FaceBlit styles (default lincolnbust,het,bronzestatue)")


def faceblit_data(args, prog):
    """``--data`` resolved, or None (said on stderr) when it holds no styles."""
    data = args.data.resolve()
    if not (data / "styles").is_dir():
        print(f"{prog}: FaceBlit test material not found at {data}", file=sys.stderr)
        return None
    return data


def save_rows(path, rows):
    """The rows and :func:`blit.bench.environment` as JSON at ``path`` (if given)."""
    if path:
        from blit.bench import environment

        path.write_text(json.dumps({"environment": environment(), "rows": rows}, indent=1) + "\n")
        print(f"saved {path}")
