"""modelkit.assets.versioning.simple_date: UTC timestamp versions."""

from __future__ import annotations

from modelkit_assets.compat.versioning.versioning import AssetsVersioningSystem


class SimpleDateAssetsVersioningSystem(AssetsVersioningSystem):
    """UTC timestamps ``YYYY-MM-DDThh-mm-ssZ``; ``update`` takes the next free second."""

    system_name = "simple_date"
