"""One module per paper: its models, budgets, sweeps and claims. The registry maps notebook slugs to modules."""
from importlib import import_module

from ..errors import UserError

# Every slug of the book (DESIGN.md); a slug maps to its module once its chapter exists.
PLANNED = ("zhang_locality", "rao_divergence", "salimbeni_pairs", "chang_arbnets", "neyshabur_betalasso")
IMPLEMENTED = ("zhang_locality", "rao_divergence", "salimbeni_pairs", "chang_arbnets", "neyshabur_betalasso")


def paper(slug: str):
    if slug not in IMPLEMENTED:
        planned = f" ({slug} is planned but has no chapter yet)" if slug in PLANNED else ""
        raise UserError(f"unknown notebook {slug!r}{planned}: choose one of {', '.join(IMPLEMENTED)}")
    return import_module(f"{__name__}.{slug}")
