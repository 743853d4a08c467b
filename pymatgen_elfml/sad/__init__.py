"""Superposed atomic densities: the shipped free-atom table and the periodic rasterizer."""

from pymatgen_elfml.sad.rasterize import sad_density
from pymatgen_elfml.sad.table import form_factor, load_table, smoothed_radial_density

__all__ = ["form_factor", "load_table", "sad_density", "smoothed_radial_density"]
