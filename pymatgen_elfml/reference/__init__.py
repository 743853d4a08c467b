"""Reference data for training: small metal structure sets for DFT (GPAW) ELF and density."""
