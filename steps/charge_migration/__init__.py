"""charge_migration: flag groups above the charge-migration signal threshold.

The algorithm lives in :mod:`steps.charge_migration.chargeloss`.
"""
