"""Networks: the StyleGAN2 generator, the residual discriminator and the DCGAN baseline."""

from birdanim.models.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator
from birdanim.models.discriminator import Discriminator, DiscriminatorConfig
from birdanim.models.stylegan2 import Generator, GeneratorConfig, z_from_seeds

__all__ = [
    "DCGANConfig",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "Discriminator",
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "z_from_seeds",
]
