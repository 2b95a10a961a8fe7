"""Keeping stores and assets dirs healthy: one module per job.

- ``inventory``  what the assets dir holds (size, last use)        -> ``cache list``
- ``usage``      whether another process uses a cached version     (prune's safety)
- ``prune``      removing cached versions by age, size, count      -> ``cache prune``
- ``verify``     re-hashing cached versions and stored objects     -> ``verify``
- ``repair``     rebuilding indexes, finding orphans and claims    -> ``repair``
- ``lockfile``   pinning resolved versions, installing them again  -> ``lock`` / ``sync``
- ``copy``       promoting versions from one store to another      -> ``copy``
- ``bundle``     a self-contained, read-only assets dir            -> ``bundle``

Modules are imported on demand (``from modelkit_assets.maintenance.prune import prune``)
so that the CLI's start-up only pays for the command it runs.
"""
