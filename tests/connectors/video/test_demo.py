"""The video demo generator: camera counts follow its size arguments."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from connectors.video.demo import generate


def _owners(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT owner, count(*) FROM cameras GROUP BY owner").fetchall())


def test_enterprise_share_sets_how_many_enterprises_get_cameras(demo_dir: Path, tmp_path: Path) -> None:
    def owners(share: float) -> dict[str, int]:
        made = generate(
            tmp_path / f"{share}.sqlite",
            spatial_gpkg=demo_dir / "spatial.gpkg",
            street_cameras=50,
            days=1,
            enterprise_share=share,
        )
        return _owners(made.path)

    none, every = owners(0.0), owners(1.0)
    assert "enterprise" not in none
    assert sum(none.values()) <= 50  # street cameras only
    with sqlite3.connect(demo_dir / "credit.sqlite") as conn:
        enterprises = conn.execute("SELECT count(*) FROM credit_subjects").fetchone()[0]
    # Every enterprise located in a Ningbo district gets a gate camera: nearly all of the demo's.
    assert 0.9 * enterprises <= every["enterprise"] <= enterprises
