"""The shipped experiment specs (``*.toml``), installed as ``checkpoint_ad.experiments``.

Each file is one experiment; see :mod:`checkpoint_ad.lab.experiment` for the format.
"""
