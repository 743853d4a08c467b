"""Training: ``python -m pymatgen_elfml.train`` (single process or torchrun)."""
