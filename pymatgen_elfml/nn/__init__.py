"""Neural network layers and the periodic U-Net."""

from pymatgen_elfml.nn.layers import PeriodicConv3d, ResBlock, periodic_upsample
from pymatgen_elfml.nn.symmavg import SymmAvg3D
from pymatgen_elfml.nn.unet import PeriodicUNet3D, UNetConfig

__all__ = ["PeriodicConv3d", "PeriodicUNet3D", "ResBlock", "SymmAvg3D", "UNetConfig", "periodic_upsample"]
