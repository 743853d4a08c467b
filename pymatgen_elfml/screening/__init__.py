"""Template screening: descriptors of an ELF (``descriptors``) and ranked runs over many structures (``run``)."""

from pymatgen_elfml.screening.descriptors import Maximum, TemplateDescriptors, describe
from pymatgen_elfml.screening.run import ScreeningTable, score_item, screen, templates

__all__ = ["Maximum", "ScreeningTable", "TemplateDescriptors", "describe", "score_item", "screen", "templates"]
