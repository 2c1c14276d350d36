"""GAN families of the papers behind one contract and one registry: Pix2PixHD (pre -> post contrast), CycleGAN harmonisation, conditional DCGAN/WGAN lesion patches, progressive WGAN-GP mammograms."""
