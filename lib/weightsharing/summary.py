"""Each chapter's summary.json: its claims, its tables and where its units came from; the synthesis and status pages
read nothing else."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError
from .paths import results_root
from .provenance import now, trained_provenance
from .store import Store, strict, write_atomic


def write_summary(slug: str, budget: str, *, store: Store, prov: dict, wall_seconds: float,
                  claims: list[dict], tables: dict[str, list[dict]]) -> Path:
    from .verdicts import VERDICTS, claims_sha

    bad = [c["id"] for c in claims if c["verdict"] not in VERDICTS]
    if bad:
        raise ValueError(f"claims {bad} have a verdict outside {VERDICTS}")
    summary = {
        "slug": slug, "budget": budget, "git_sha": prov["git_sha"], "finished_at": now(),
        "claims_sha": claims_sha(slug),
        "wall_seconds": round(wall_seconds, 1), "device": prov["device"], "torch_version": prov["torch_version"],
        "units": len(store), "units_computed": store.computed, "units_reused": store.reused,
        "compute_seconds": round(store.compute_seconds, 1), "trained": trained_provenance(store.records.values()),
        "claims": claims, "tables": tables,
    }
    path = store.path.with_name("summary.json")
    write_atomic(path, json.dumps(strict(summary), indent=1, allow_nan=False) + "\n")
    return path


def read_summaries(budget: str | None = None) -> list[dict]:
    out = []
    for path in sorted(results_root().glob("*/*/summary.json")):
        try:
            s = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise UserError(f"{path} is not valid JSON; rerun its notebook (python -m weightsharing run "
                            f"{path.parents[1].name} --budget {path.parent.name})") from None
        if budget is None or s["budget"] == budget:
            out.append(s)
    return out
