"""Downstream utility: 3D U-Net tumour segmentation experiments (paper 003's four train/test scenarios) and Dice evaluation."""
