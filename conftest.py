"""Doctest collection of the package: optional-extra modules are skipped when their extra is absent."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("jobflow") else ["pymatgen_elfml/reference/workflow.py"]
