"""Training data: the paper's triplet files and converters from reference records and VASP runs."""
