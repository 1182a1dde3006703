"""The GAN engine: project the bird into W+, mix with target poses, render a smooth loop."""
