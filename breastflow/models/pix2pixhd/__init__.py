"""Pix2PixHD (Wang et al. 2018) for pre -> post-contrast synthesis, as paper 003 sec. 3.2.2."""
