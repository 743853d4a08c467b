"""Symmetry-preserved density generation (the second paper): the asymmetric-unit + DCT codec (``codec``)."""
