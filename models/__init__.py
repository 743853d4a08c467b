"""Registered pretrained models, one folder each (installed as ``pymatgen_elfml.models``)."""
